"""A client on Debian's python3-dbus (the library velib_python uses), run with /usr/bin/python3.

It scans a service the way velib's DbusMonitor does (ListNames, GetNameOwner, GetItems, GetValue
on ``/``), reports the dbus-python types it received, then listens for PropertiesChanged and
ItemsChanged with a GLib main loop and reports each as one JSON line.

    /usr/bin/python3 velib_client.py ADDRESS SERVICE SIGNALS TIMEOUT_S

``--monitor`` follows services of some classes as velib's DbusMonitor does: the DeviceInstance
is read once, when a service is scanned (at start and on NameOwnerChanged with a new owner);
a service whose owner left is forgotten. It prints ``{"services": {name: instance}}`` after
every change of that list (what systemcalc's ``get_service_list`` would answer).

    /usr/bin/python3 velib_client.py ADDRESS --monitor TIMEOUT_S CLASS...
"""

import json
import sys

import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

BUSITEM = "com.victronenergy.BusItem"


def unwrap(v):
    """dbus-python value -> plain Python, any empty array -> None (velib's rule)."""
    if isinstance(v, (dbus.Array, dbus.ByteArray)):
        return None if len(v) == 0 else [unwrap(x) for x in v]
    if isinstance(v, dbus.Dictionary):
        return {str(k): unwrap(x) for k, x in v.items()}
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(
        v, (dbus.Int16, dbus.Int32, dbus.Int64, dbus.UInt16, dbus.UInt32, dbus.UInt64, dbus.Byte)
    ):
        return int(v)
    if isinstance(v, dbus.Double):
        return float(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath)):
        return str(v)
    return v


def kind(v):
    """Type name as dbus-python sees it, with the element signature for arrays."""
    if isinstance(v, dbus.Array):
        return f"Array[{v.signature}]"
    return type(v).__name__


def scan_all(address):
    """Every com.victronenergy service as velib's DbusMonitor scans it: types of all values."""
    bus = dbus.bus.BusConnection(address)
    out = {}
    for name in sorted(str(n) for n in bus.list_names()):
        if not name.startswith("com.victronenergy."):
            continue
        items = bus.get_object(name, "/", introspect=False).GetItems(dbus_interface=BUSITEM)
        out[name] = {
            str(p): [kind(e["Value"]), unwrap(e["Value"]), str(e["Text"])] for p, e in items.items()
        }
    print(json.dumps(out), flush=True)


def monitor(address, timeout, classes):
    """velib DbusMonitor's discovery: scan-time instances, rescans on NameOwnerChanged."""
    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    services = {}  # name -> device instance, as read by the scan

    def wanted(name):
        return name.startswith("com.victronenergy.") and ".".join(name.split(".")[:3]) in classes

    def report():
        print(json.dumps({"services": dict(sorted(services.items()))}), flush=True)

    def scan(name):
        try:
            items = bus.call_blocking(name, "/", BUSITEM, "GetItems", "", [])
        except dbus.exceptions.DBusException:
            return False
        if "/DeviceInstance" not in items:
            return False
        services[name] = int(items["/DeviceInstance"]["Value"])
        return True

    def owner_changed(name, old, new):
        if not wanted(name):
            return False
        if new != "":
            scan(name)
        elif name in services:
            del services[name]
        report()
        return False

    def on_owner(name, old, new):  # deferred to the main loop, as velib does
        GLib.idle_add(owner_changed, str(name), str(old), str(new))

    rule = {"signal_name": "NameOwnerChanged", "dbus_interface": "org.freedesktop.DBus"}
    try:
        bus.add_signal_receiver(on_owner, arg0namespace="com.victronenergy", **rule)
    except TypeError:  # dbus-python without arg0namespace: velib then subscribes unfiltered
        bus.add_signal_receiver(on_owner, **rule)
    for name in bus.list_names():
        if wanted(str(name)):
            scan(str(name))
    report()
    loop = GLib.MainLoop()
    GLib.timeout_add(int(timeout * 1000), loop.quit)
    loop.run()


def main():
    if sys.argv[2] == "--all":
        scan_all(sys.argv[1])
        return
    if sys.argv[2] == "--monitor":
        monitor(sys.argv[1], float(sys.argv[3]), set(sys.argv[4:]))
        return
    address, name, expected, timeout = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        float(sys.argv[4]),
    )
    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    owner = bus.get_name_owner(name)
    root = bus.get_object(name, "/", introspect=False)
    items = root.GetItems(dbus_interface=BUSITEM)
    scan = {
        "listed": name in [str(n) for n in bus.list_names()],
        "items": {
            str(p): {"kind": kind(e["Value"]), "value": unwrap(e["Value"]), "text": str(e["Text"])}
            for p, e in items.items()
        },
        "root_value": unwrap(root.GetValue(dbus_interface=BUSITEM)),
        "node_value": unwrap(
            bus.get_object(name, "/Ac", introspect=False).GetValue(dbus_interface=BUSITEM)
        ),
        "leaf_text": str(
            bus.get_object(name, "/Ac/Power", introspect=False).GetText(dbus_interface=BUSITEM)
        ),
        "set_result": int(
            bus.get_object(name, "/Limit", introspect=False).SetValue(
                dbus.Int32(12, variant_level=1), dbus_interface=BUSITEM
            )
        ),
        "introspect_has_children": '<node name="Ac"/>'
        in str(root.Introspect(dbus_interface="org.freedesktop.DBus.Introspectable")),
    }
    print(json.dumps({"scan": scan}), flush=True)
    seen = []
    loop = GLib.MainLoop()

    def on_properties(changes, path=None, sender=None):
        if sender != owner:
            return
        seen.append(1)
        print(
            json.dumps(
                {
                    "signal": "PropertiesChanged",
                    "path": str(path),
                    "kind": kind(changes["Value"]),
                    "value": unwrap(changes["Value"]),
                    "text": str(changes.get("Text", "")),
                }
            ),
            flush=True,
        )
        if len(seen) >= expected:
            loop.quit()

    def on_items(changes, path=None, sender=None):
        if sender != owner:
            return
        seen.append(1)
        print(
            json.dumps(
                {
                    "signal": "ItemsChanged",
                    "path": str(path),
                    "items": {
                        str(p): {"kind": kind(e["Value"]), "value": unwrap(e["Value"])}
                        for p, e in changes.items()
                    },
                }
            ),
            flush=True,
        )
        if len(seen) >= expected:
            loop.quit()

    bus.add_signal_receiver(
        on_properties,
        signal_name="PropertiesChanged",
        dbus_interface=BUSITEM,
        path_keyword="path",
        sender_keyword="sender",
    )
    bus.add_signal_receiver(
        on_items,
        signal_name="ItemsChanged",
        dbus_interface=BUSITEM,
        path="/",
        path_keyword="path",
        sender_keyword="sender",
    )
    print(json.dumps({"listening": True}), flush=True)
    GLib.timeout_add(int(timeout * 1000), loop.quit)
    loop.run()
    print(json.dumps({"done": len(seen)}), flush=True)


if __name__ == "__main__":
    main()
