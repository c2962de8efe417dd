"""The RL encoding: spec and hash, observation bounds, action mapping, ONNX policy files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controllers.rl.encoding import (
    BESS_DEADBAND,
    Encoder,
    Options,
    Spec,
    action_to_setpoints,
    build_spec,
    setpoints_to_action,
)
from controllers.rl.onnx_io import mlp_to_onnx, save_model
from controllers.rl.policy import OnnxPolicy
from tests.conftest import SITE
from tests.contract.test_controllers import GRID, observation
from twin.config import load_site
from twin.errors import ConfigError

SITE_CFG = load_site(SITE)


def random_policy(path: Path, spec: Spec, seed: int = 0, hidden: int = 16) -> tuple[Path, list, list]:
    """A random tanh MLP written as a policy file; returns (path, weights, biases)."""
    rng = np.random.default_rng(seed)
    w = [rng.normal(0, 0.3, (hidden, spec.n_obs)), rng.normal(0, 0.3, (spec.n_act, hidden))]
    b = [rng.normal(0, 0.1, hidden), np.full(spec.n_act, 0.5)]
    save_model(mlp_to_onnx(w, b, spec), path)
    return path, w, b


def test_spec_layout_and_hash() -> None:
    spec = build_spec(SITE_CFG)
    # 18 site features + 2 x 4 forecast hours + 3 x 38 sockets; battery + 38 sockets
    assert spec.n_obs == 18 + 8 + 3 * 38 == 140
    assert spec.n_act == 39 and spec.act_names[0] == "bess"
    assert all(np.isfinite(spec.obs_low)) and all(np.isfinite(spec.obs_high))
    assert all(lo < hi for lo, hi in zip(spec.obs_low, spec.obs_high, strict=True))
    assert spec.hash == build_spec(SITE_CFG).hash  # stable
    assert Spec.from_json(spec.to_json()) == spec
    assert build_spec(SITE_CFG, Options(forecast_h=0)).hash != spec.hash
    bigger = SITE_CFG.model_copy(update={"bess": SITE_CFG.bess.model_copy(update={"p_charge_max_kw": 500.0})})
    other = build_spec(bigger)
    assert other.hash != spec.hash
    assert any("bess_charge_kw" in d for d in spec.diff(other))


def test_observation_inside_bounds_and_deterministic() -> None:
    spec = build_spec(SITE_CFG)
    enc = Encoder(spec)
    lo, hi = np.array(spec.obs_low, np.float32), np.array(spec.obs_high, np.float32)
    for args in GRID:
        o = observation(*args)
        v = enc.encode(o)
        assert v.dtype == np.float32 and v.shape == (spec.n_obs,)
        assert (v >= lo).all() and (v <= hi).all()
        assert np.array_equal(v, Encoder(spec).encode(o))
    o = observation(12.0, 0.55, 1700.0, 1412.0, 3)
    v = dict(zip(spec.obs_names, enc.encode(o), strict=True))
    assert v["pv"] == pytest.approx(0.5)
    assert v["soc"] == pytest.approx(0.55)
    assert v["hour_sin"] == pytest.approx(0.0, abs=1e-6) and v["hour_cos"] == pytest.approx(-1.0)
    assert v["s0_plug"] == 1.0 and v["s3_plug"] == 0.0 and v["s3_need"] == 0.0
    assert v["pv_fc_h1"] == pytest.approx(0.5)  # not prepared: holds the present value


@pytest.mark.parametrize(("a", "p_kw", "phase"), [
    (0.5, 0.0, 0), (0.5 + BESS_DEADBAND / 4, 0.0, 0), (1.0, 400.0, 2), (0.0, -400.0, 1),
    (0.75, 200.0, 2), (0.25, -200.0, 1), (1.7, 400.0, 2), (-3.0, -400.0, 1),
])
def test_action_to_setpoints(a: float, p_kw: float, phase: int) -> None:
    spec = build_spec(SITE_CFG)
    o = observation(12.0, 0.5, 1000.0, 1500.0, 5)
    act = np.full(39, 0.5)
    act[0] = a
    act[1] = 2.0  # clipped to the rating
    sp = action_to_setpoints(act, o, spec.scales)
    assert sp.p_bess_kw == pytest.approx(p_kw) and sp.phase == phase
    assert sp.p_socket_max_kw[0] == pytest.approx(3.7)
    assert sp.p_socket_max_kw[-1] == pytest.approx(3.7)  # 0.5 x 7.4 kW
    back = setpoints_to_action(sp, o, spec.scales)
    assert np.allclose(action_to_setpoints(back, o, spec.scales).p_socket_max_kw, sp.p_socket_max_kw)
    with pytest.raises(ValueError, match="39"):
        action_to_setpoints(np.zeros(5), o, spec.scales)


def test_onnx_policy_matches_numpy_forward(tmp_path: Path) -> None:
    spec = build_spec(SITE_CFG)
    path, w, b = random_policy(tmp_path / "p.onnx", spec)
    pol = OnnxPolicy(path)
    assert pol.spec == spec and pol.spec_hash == spec.hash
    enc = Encoder(spec)
    for args in GRID[:10]:
        x = enc.encode(observation(*args)).astype(np.float64)
        ref = np.clip(w[1] @ np.tanh(w[0] @ x + b[0]) + b[1], 0, 1)
        assert np.allclose(pol.act(enc.encode(observation(*args))), ref, atol=1e-5)


def test_bad_policy_files_are_config_errors(tmp_path: Path) -> None:
    import onnx

    spec = build_spec(SITE_CFG)
    with pytest.raises(ConfigError, match="not found"):
        OnnxPolicy(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(ConfigError, match="not a readable ONNX model"):
        OnnxPolicy(tmp_path / "junk.onnx")
    (tmp_path / "model.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(ConfigError, match="unpickles"):
        OnnxPolicy(tmp_path / "model.zip")
    path, _, _ = random_policy(tmp_path / "p.onnx", spec)
    m = onnx.load(str(path))
    del m.metadata_props[:]
    save_model(m, tmp_path / "nometa.onnx")
    with pytest.raises(ConfigError, match=r"no 'pvbess\.spec'"):
        OnnxPolicy(tmp_path / "nometa.onnx")
    m = onnx.load(str(path))
    for prop in m.metadata_props:
        if prop.key == "pvbess.spec_hash":
            prop.value = "0123456789abcdef"
    save_model(m, tmp_path / "tampered.onnx")
    with pytest.raises(ConfigError, match="edited"):
        OnnxPolicy(tmp_path / "tampered.onnx")
    other = build_spec(SITE_CFG, Options(forecast_h=2))
    pol = OnnxPolicy(random_policy(tmp_path / "fc2.onnx", other)[0])
    with pytest.raises(ConfigError, match="does not match this site"):
        pol.check_spec(spec)


@pytest.mark.parametrize("forecast", ["perfect", "persistence", {"noisy": {"rmse_frac": 0.2}}])
def test_precomputed_forecast_features_equal_per_step(make_scenario, forecast) -> None:  # type: ignore[no-untyped-def]
    from twin.config import load_scenario
    from twin.engine import Twin

    scn = load_scenario(make_scenario(duration="2d", forecast=forecast))
    twin = Twin(scn)
    spec = build_spec(scn.site)
    per_step, table = Encoder(spec), Encoder(spec)
    ctx = twin.context
    per_step.prepare(ctx.forecaster)
    table.prepare(ctx.forecaster, ctx.n_steps, ctx.dt_s)
    assert (table._fc_table is None) == (forecast == "persistence")
    obs = twin.reset()
    while not twin.done:  # the last steps wrap onto the last day
        assert np.array_equal(per_step.encode(obs), table.encode(obs))
        obs = twin.step()
