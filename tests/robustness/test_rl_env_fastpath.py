"""Red-team cases for the RL fast path (issue 20): caches that must not go stale, inputs
off the beaten path. Each compares the fast encoder / mapping with the slow references of
``tests.unit.test_rl_fastpath`` bit for bit."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from controllers.rl.encoding import BESS_DEADBAND, Encoder, action_to_setpoints, build_spec
from tests.conftest import SITE
from tests.contract.test_controllers import observation
from tests.unit.test_rl_fastpath import ref_action_to_setpoints, ref_encode, same_bits
from twin.config import load_site
from twin.types import Setpoints

SPEC = build_spec(load_site(SITE))


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe",
                                "Pacific/Apia", "America/Lima"])
def test_month_feature_across_month_ends_dst_and_the_date_line(tz: str) -> None:
    """A year of observations every 50 min (every minute of the hour visited) in zones with
    DST at midnight (Sao Paulo 2011), half-hour DST (Lord Howe) and a skipped day (Apia,
    30 Dec 2011): the held month never goes stale. Then time runs backwards, and a new
    episode start / time zone arrives: the month is looked up again."""
    enc = Encoder(SPEC)
    base = observation(12.0, 0.5, 800.0, 1500.0, 5)
    start = datetime(2011, 1, 1, tzinfo=UTC)
    steps = [i * 3000.0 for i in range(365 * 24 * 60 // 50)]
    for t_s in steps + steps[::-7]:
        o = base._replace(t_s=t_s, start_utc=start, tz=tz)
        assert same_bits(enc.encode(o), ref_encode(SPEC, o, None)), (tz, t_s)
    # 30 Jun 2011 20:00 UTC is 1 July in Tokyo (early in the month: the month is held) and
    # still 30 June in Apia and Lima; then another start with Tokyo's month held
    late_june = datetime(2011, 6, 30, 20, 0, tzinfo=UTC)
    for o in (base._replace(t_s=0.0, start_utc=late_june, tz="Asia/Tokyo"),
              base._replace(t_s=0.0, start_utc=late_june, tz=tz),
              base._replace(t_s=0.0, start_utc=late_june, tz="Asia/Tokyo"),
              base._replace(t_s=0.0, start_utc=datetime(2011, 6, 29, 20, 0, tzinfo=UTC), tz="Asia/Tokyo"),
              base._replace(t_s=steps[-1], start_utc=datetime(2011, 6, 1, tzinfo=UTC), tz=tz)):
        assert same_bits(enc.encode(o), ref_encode(SPEC, o, None))


def test_hour_cache_is_bounded_and_right() -> None:
    """A live run may observe any float hour: the cache stays bounded, every value right."""
    enc = Encoder(SPEC)
    rng = np.random.default_rng(1)
    base = observation(0.0, 0.5, 800.0, 1500.0, 0)
    for h in [*rng.uniform(0.0, 24.0, 3 * Encoder.HOUR_CACHE_MAX).tolist(), 0.0, 23.75, 0.0]:
        o = base._replace(hour=h)
        assert same_bits(enc.encode(o), ref_encode(SPEC, o, None))
    assert len(enc._hour_feat) <= Encoder.HOUR_CACHE_MAX


def test_sockets_off_contract_and_reused_arrays() -> None:
    """Empty sockets whose departure is NaN, -0.0 or finite (the contract says inf), occupied
    ones past their departure, NaN energy: the same bits as the reference. The same empty
    arrays object reused after occupied ones, and an occupied object reused at a later time."""
    enc = Encoder(SPEC)
    o = observation(10.0, 0.5, 800.0, 1500.0, 6)
    s = o.sockets
    dep = np.full(38, math.inf)
    dep[:6] = [0.0, -3600.0, 7200.0, 1e9, 36000.0, 36000.0 + 1e-9]
    dep[6:10] = [math.nan, -0.0, 0.0, 36000.0]
    e_rem = np.array(s.e_remaining_kwh)
    e_rem[3] = math.nan
    odd = o._replace(sockets=s._replace(t_departure_s=dep, e_remaining_kwh=e_rem))
    empty = observation(10.0, 0.5, 800.0, 1500.0, 0)
    seq = [empty, odd, empty._replace(t_s=99.0), odd._replace(t_s=40000.0), odd, empty,
           empty._replace(sockets=empty.sockets._replace(t_departure_s=dep)),
           empty._replace(t_s=5.0)]
    for i, x in enumerate(seq):
        assert same_bits(enc.encode(x), ref_encode(SPEC, x, None)), i


@pytest.mark.parametrize("action", [
    [0.5] * 39, [0.51] + [2.0] * 38, np.full((1, 39), 0.25), np.arange(39) % 2,
    np.full(39, -0.0, np.float32), np.array([math.nan] + [0.5] * 38),
    np.array([math.inf] + [-math.inf, math.nan] * 19), np.linspace(-1, 2, 39, dtype=np.float16),
    np.full(39, True),
])
def test_odd_actions_map_like_the_reference(action) -> None:  # type: ignore[no-untyped-def]
    """Lists, 2-D, int, bool, float16, signed zero, NaN and infinities: the same setpoints."""
    o = observation(12.0, 0.5, 1000.0, 1500.0, 5)
    got = action_to_setpoints(action, o, SPEC.scales)
    want = ref_action_to_setpoints(action, o, SPEC.scales)
    assert got.phase == want.phase and same_bits(got.p_bess_kw, want.p_bess_kw)
    assert same_bits(got.p_socket_max_kw, want.p_socket_max_kw)
    with pytest.raises(ValueError, match="39"):
        action_to_setpoints(np.asarray(action).reshape(-1)[:5], o, SPEC.scales)


ODD_ACTIONS = [
    np.full(39, 0.5, np.float32), np.r_[0.51, [2.0] * 38], np.arange(39) % 2,
    np.full(39, -0.0, np.float32), np.array([math.nan] + [0.5] * 38),
    np.array([math.inf] + [-math.inf, math.nan] * 19), np.linspace(-1, 2, 39, dtype=np.float16),
    np.full(39, True), np.full((1, 39), 0.25), [0.3] * 39,
    np.array([0.5 + 0.6 * BESS_DEADBAND] + [0.7] * 38, np.float32),
    np.array([0.5 - 0.5 * BESS_DEADBAND] + [0.7] * 38, np.float32),
    np.linspace(-0.2, 1.2, 78, dtype=np.float32)[::2], np.full(39, 0.7, ">f4"),
]


def test_action_mapper_equals_the_reference_and_follows_new_ratings() -> None:
    """``ActionMapper`` (the env's and the rl controller's short path): odd actions on
    read-only ratings (held), then a new read-only rating object with other values (taken
    up), then writeable ratings (never held: they could change in place)."""
    from controllers.rl.encoding import ActionMapper

    m = ActionMapper(SPEC)
    o = observation(12.0, 0.5, 1000.0, 1500.0, 5)
    rating = np.array(o.sockets.p_rating_kw)
    other = rating * 0.5 + 1.0
    other.flags.writeable = False
    writeable = rating.copy()
    for r in (o.sockets.p_rating_kw, other, writeable):
        obs = o._replace(sockets=o.sockets._replace(p_rating_kw=r))
        for action in ODD_ACTIONS + ODD_ACTIONS[::-1]:
            got = m(action, obs)  # type: ignore[arg-type]
            want = ref_action_to_setpoints(action, obs, SPEC.scales)
            assert type(got) is Setpoints and got.p_bess_split_kw is None
            assert got.phase == want.phase and same_bits(got.p_bess_kw, want.p_bess_kw)
            assert same_bits(got.p_socket_max_kw, want.p_socket_max_kw)
        if r is writeable:
            writeable *= 2.0  # changed in place: the next mapping must see it
            got = m(ODD_ACTIONS[0], obs)
            assert same_bits(got.p_socket_max_kw,
                             ref_action_to_setpoints(ODD_ACTIONS[0], obs, SPEC.scales).p_socket_max_kw)
    with pytest.raises(ValueError, match="39"):
        m(np.zeros(5), o)
