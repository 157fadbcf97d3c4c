"""Protocol objects behind the emulators: meters, switches, inverters, counters, auth, faults."""

from __future__ import annotations

import base64
import hashlib
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venus_ems.clock import SteppedClock
from venus_ems.errors import ConfigError
from venus_ems.sim.devices import (
    InverterBank,
    InverterSpec,
    MemoryInverterBank,
    MemorySwitch,
    MeterSource,
    PhaseReading,
    StaticMeter,
    SwitchSource,
)
from venus_ems.sim.devices.auth import DigestSha256, basic_credentials_ok, parse_digest_header
from venus_ems.sim.devices.counters import MinuteEnergy
from venus_ems.sim.devices.faults import FAULT_MODES, Faults
from venus_ems.sim.devices.shelly_rpc import RpcError, param_bool, param_int, parse_query

pytestmark = pytest.mark.anyio


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- meters and switches -------------------------------------------------------------------------


def test_phase_reading_derives_current_and_reactive_power():
    r = PhaseReading.of(-620.0, voltage_v=235.0, power_factor=-0.66)
    assert r.current_a == pytest.approx(620.0 / 0.66 / 235.0)
    assert r.apparent_va == pytest.approx(620.0 / 0.66)
    assert r.reactive_var < 0  # follows the direction of the active power
    assert r.power_factor == -0.66
    with pytest.raises(ValueError, match="pf"):
        PhaseReading.of(100.0, power_factor=1.5)


async def test_static_meter_integrates_import_and_export_separately():
    clock = SteppedClock()
    meter = StaticMeter(2, clock=clock)
    assert isinstance(meter, MeterSource)
    meter.set_power(0, 1200.0)
    meter.set_power(1, -600.0)
    await clock.advance(1800)
    a, b = meter.read()
    assert a.energy_forward_wh == pytest.approx(600.0)
    assert a.energy_reverse_wh == 0.0
    assert b.energy_reverse_wh == pytest.approx(300.0)
    assert b.energy_forward_wh == 0.0
    meter.set_power(0, -1200.0)  # counters keep what was accrued at the old power
    await clock.advance(900)
    a, _ = meter.read()
    assert (a.energy_forward_wh, a.energy_reverse_wh) == pytest.approx((600.0, 300.0))
    with pytest.raises(IndexError):
        meter.set_power(2, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        StaticMeter([])


async def test_memory_switch_meters_only_while_on():
    clock = SteppedClock()
    sw = MemorySwitch(load_w=460.0, clock=clock)
    assert isinstance(sw, SwitchSource)
    await clock.advance(3600)
    assert sw.read().energy_wh == 0.0
    sw.set_output(True)
    await clock.advance(1800)
    reading = sw.read()
    assert reading.output is True
    assert reading.power_w == 460.0
    assert reading.current_a == pytest.approx(2.0)
    assert reading.energy_wh == pytest.approx(230.0)
    sw.load_w = -300.0  # a plugged-in PV inverter feeding back
    await clock.advance(3600)
    assert sw.read().returned_energy_wh == pytest.approx(300.0)
    assert sw.switch_count == 1


# --- per-minute counters -------------------------------------------------------------------------


@given(
    power_w=st.floats(0, 5000),
    times=st.lists(st.floats(0.1, 200.0), min_size=1, max_size=30),
)
def test_minute_energy_of_constant_power_is_exact(power_w, times):
    log = MinuteEnergy()
    t = 1_782_000_000.0  # a minute boundary
    log.sample(t, 0.0)
    for dt in times:
        t += dt
        log.sample(t, power_w * (t - 1_782_000_000.0) / 3600.0)
    whole = math.floor((t - 1_782_000_000.0) / 60)
    expected = [power_w / 60.0 if i < whole else 0.0 for i in range(3)]
    assert log.last_minutes_wh(t) == pytest.approx(expected, abs=1e-6)
    assert log.minute_ts(t) == math.floor(t / 60) * 60


def test_minute_energy_ignores_minutes_before_the_first_sample():
    log = MinuteEnergy()
    log.sample(1_782_000_030.0, 10.0)
    log.sample(1_782_000_150.0, 12.0)
    # boundary 60 s and 120 s are interpolated; the minute ending at 60 s started before sampling
    assert log.last_minutes_wh(1_782_000_150.0) == pytest.approx((1.0, 0.0, 0.0))


# --- inverter bank -------------------------------------------------------------------------------


def make_bank(clock, **kw):
    specs = [
        InverterSpec("114182940773", "HM-600", max_power_w=600.0),
        InverterSpec("114182000001", "HM-800", max_power_w=800.0, report_max_power=False),
    ]
    return MemoryInverterBank(specs, clock=clock, **kw)


async def test_limit_takes_effect_after_the_dead_time():
    clock = SteppedClock()
    bank = make_bank(clock, dead_time_s=4.0)
    assert isinstance(bank, InverterBank)
    bank.set_available_dc("114182940773", 1000.0)
    assert bank.ac_power_w("114182940773") == pytest.approx(600.0)  # capped by max power
    bank.command_limit("114182940773", 150.0, relative=False, persistent=False)
    status = bank.inverters()[0]
    assert status.limit_set_status == "Pending"
    assert bank.ac_power_w("114182940773") == pytest.approx(600.0)  # still the old limit
    await clock.advance(3.9)
    assert bank.inverters()[0].limit_set_status == "Pending"
    await clock.advance(0.2)
    status = bank.inverters()[0]
    assert status.limit_set_status == "Ok"
    assert status.limit_relative_pct == pytest.approx(25.0)
    assert status.limit_absolute_w == pytest.approx(150.0)
    assert bank.ac_power_w("114182940773") == pytest.approx(150.0)
    assert bank.dc_power_w("114182940773") == pytest.approx(150.0 / 0.96)
    assert bank.commands[-1].kind == "limit"
    assert bank.commands[-1].received_at == 0.0


async def test_energy_follows_the_limit_change_at_its_due_time():
    clock = SteppedClock()
    bank = make_bank(clock, dead_time_s=1800.0)
    bank.set_available_dc("114182940773", 1000.0)
    bank.command_limit("114182940773", 50.0, relative=True, persistent=False)
    await clock.advance(3600)
    # 0.5 h at 600 W, then 0.5 h at 300 W
    assert bank.inverters()[0].yield_total_kwh == pytest.approx(0.45)


async def test_restart_falls_back_to_the_persistent_limit():
    clock = SteppedClock()
    bank = make_bank(clock, dead_time_s=1.0)
    serial = "114182940773"
    bank.command_limit(serial, 80.0, relative=True, persistent=True)
    bank.command_limit(serial, 30.0, relative=True, persistent=False)
    await clock.advance(1.0)
    assert bank.inverters()[0].limit_relative_pct == pytest.approx(30.0)
    bank.command_restart(serial)
    await clock.advance(1.0)
    status = bank.inverters()[0]
    assert status.limit_relative_pct == pytest.approx(80.0)
    assert status.power_set_status == "Ok"


async def test_power_off_stops_production():
    clock = SteppedClock()
    bank = make_bank(clock, dead_time_s=1.0)
    bank.set_available_dc("114182940773", 200.0)
    bank.command_power("114182940773", False)
    assert bank.inverters()[0].power_set_status == "Pending"
    await clock.advance(1.0)
    assert bank.ac_power_w("114182940773") == 0.0
    assert bank.inverters()[0].producing is False


async def test_unreachable_inverter_shows_stale_data_and_fails_commands():
    clock = SteppedClock()
    bank = make_bank(clock, dead_time_s=2.0, poll_interval_s=5.0)
    serial = "114182940773"
    bank.set_available_dc(serial, 300.0)
    await clock.advance(7.0)
    bank.set_reachable(serial, False)
    bank.set_available_dc(serial, 100.0)  # the real output changes, the DTU does not see it
    bank.command_limit(serial, 10.0, relative=True, persistent=False)
    await clock.advance(10.0)
    status = bank.inverters()[0]
    assert status.reachable is False
    assert status.ac.power_w == pytest.approx(288.0)
    assert status.data_age_s == pytest.approx(12.0)  # last poll at t=5
    assert status.limit_set_status == "Failure"
    assert status.limit_relative_pct == 100.0
    assert bank.ac_power_w(serial) == pytest.approx(96.0)
    bank.set_reachable(serial, True)
    assert bank.inverters()[0].ac.power_w == pytest.approx(96.0)


def test_unknown_max_power_reports_minus_one_and_bad_input_is_refused():
    bank = make_bank(SteppedClock())
    assert bank.inverters()[1].limit_absolute_w == -1.0
    assert bank.inverters()[1].max_power_w == 0.0
    with pytest.raises(KeyError, match="nope"):
        bank.command_limit("nope", 1.0, relative=True, persistent=False)
    assert not bank.commands
    with pytest.raises(ValueError, match="duplicate"):
        MemoryInverterBank([InverterSpec("1"), InverterSpec("1")])


# --- auth ----------------------------------------------------------------------------------------


def test_basic_credentials():
    good = "Basic " + base64.b64encode(b"admin:openDTU42").decode()
    assert basic_credentials_ok(good, "admin", "openDTU42")
    assert not basic_credentials_ok(good, "admin", "other")
    assert not basic_credentials_ok("Basic !!!", "admin", "openDTU42")
    assert not basic_credentials_ok(None, "admin", "openDTU42")
    assert not basic_credentials_ok("Bearer x", "admin", "openDTU42")


def digest_answer(realm, password, nonce_hex, method, uri, *, nc="00000001", cnonce="c0ffee"):
    ha1 = sha(f"admin:{realm}:{password}")
    ha2 = sha(f"{method}:{uri}")
    response = sha(f"{ha1}:{nonce_hex}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="admin", realm="{realm}", nonce="{nonce_hex}", uri="{uri}", '
        f'algorithm=SHA-256, qop=auth, nc={nc}, cnonce="{cnonce}", response="{response}"'
    )


async def test_digest_header_and_frame_answers():
    clock = SteppedClock()
    digest = DigestSha256("shellypro3em-aabbccddeeff", "secret", clock=clock)
    challenge = parse_digest_header(digest.www_authenticate())
    assert challenge["algorithm"] == "SHA-256"
    assert challenge["qop"] == "auth"
    uri = "/rpc/EM.GetStatus?id=0"
    header = digest_answer(digest.realm, "secret", challenge["nonce"], "GET", uri)
    assert digest.check_header(header, "GET", uri, "/rpc/EM.GetStatus")
    assert not digest.check_header(header, "POST", uri, "/rpc/EM.GetStatus")
    assert not digest.check_header(header, "GET", "/rpc/Other", "/rpc/Other")
    wrong = digest_answer(digest.realm, "wrong", challenge["nonce"], "GET", uri)
    assert not digest.check_header(wrong, "GET", uri, "/rpc/EM.GetStatus")

    frame_challenge = json.loads(json.dumps(digest.challenge()))
    cnonce = 4242
    ha1 = sha(f"admin:{digest.realm}:secret")
    response = sha(
        f"{ha1}:{frame_challenge['nonce']}:1:{cnonce}:auth:{sha('dummy_method:dummy_uri')}"
    )
    auth = {
        "realm": digest.realm,
        "username": "admin",
        "nonce": frame_challenge["nonce"],
        "cnonce": cnonce,
        "response": response,
        "algorithm": "SHA-256",
    }
    assert digest.check_frame(auth)
    assert not digest.check_frame({**auth, "response": "0" * 64})
    assert not digest.check_frame("nonsense")
    await clock.advance(3601)  # nonces expire after an hour
    assert not digest.check_frame(auth)
    assert not digest.check_header(header, "GET", uri, "/rpc/EM.GetStatus")


# --- RPC params and fault modes ------------------------------------------------------------------


def test_rpc_query_parameters_are_json_literals_or_text():
    params = parse_query([("id", "0"), ("on", "true"), ("name", "kitchen"), ("q", '"7"')])
    assert params == {"id": 0, "on": True, "name": "kitchen", "q": "7"}
    with pytest.raises(RpcError) as err:
        param_int({}, "id")
    assert (err.value.code, err.value.message) == (-103, "Missing required 'id'")
    with pytest.raises(RpcError, match="Invalid argument 'on'"):
        param_bool({"on": "maybe"}, "on")
    assert param_bool({}, "on", required=False) is None


def test_fault_mode_is_validated_and_a_bad_one_changes_nothing():
    faults = Faults()
    seen = []
    faults.on_change(lambda: seen.append(faults.mode))
    for mode in FAULT_MODES:
        faults.mode = mode
    assert seen == list(FAULT_MODES)
    with pytest.raises(ConfigError, match="not one of"):
        faults.mode = "broken"
    assert faults.mode == FAULT_MODES[-1]
    assert len(seen) == len(FAULT_MODES)
