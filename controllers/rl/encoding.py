"""The observation and action encoding shared by training (``twin.rl``) and deployment (``rl``).

One module, so that the vector a policy was trained on is, bit for bit, the vector it
sees when it runs in ``twin run``, ``twin live`` or ``twin hil``.

Observation (``float32``, every feature inside finite bounds; values outside are clipped)
------------------------------------------------------------------------------------------
Site features (docs/spec.md §4.4), each divided by a scale taken from the site configuration:

========================  ======================================================  ===========
name                      meaning                                                 bounds
========================  ======================================================  ===========
``pv``                    PV AC power available / ``pv_ac_kw``                    [0, 1.5]
``ev``                    EV demand at full allowance / ``ev_kw``                 [0, 1.5]
``mall``                  mall demand / ``mall_kw``                               [0, 2]
``load``                  (EV + mall) / (``ev_kw`` + ``mall_kw``)                 [0, 2]
``soc``                   battery state of charge [0-1]                          [0, 1]
``soc_kwh``               stored energy / ``bess_kwh`` (shows capacity fade)      [0, 1.5]
``grid``                  grid import if the battery kept its last power and the  [0, 2]
                          EVs charged at full allowance / (``ev_kw`` + ``mall_kw``)
``net``                   (load − PV) / ``pv_ac_kw`` (+ deficit, − surplus)       [-2, 2]
``hour_sin/cos``          local hour of day, cyclic                              [-1, 1]
``weekday_sin/cos``       weekday, cyclic                                        [-1, 1]
``month_sin/cos``         month, cyclic                                          [-1, 1]
``price``                 energy price / peak price                              [0, 2]
``peak``                  1 in the peak period (HP), else 0                      [0, 1]
``ev_open``               1 while the station is open                            [0, 1]
``waiting``               vehicles waiting / sockets                             [0, 2]
``pv_fc_h{i}``            forecast mean PV in hour ``i`` ahead / ``pv_ac_kw``     [0, 1.5]
``mall_fc_h{i}``          forecast mean mall demand in hour ``i`` / ``mall_kw``   [0, 2]
``s{j}_plug``             socket ``j`` occupied                                  [0, 1]
``s{j}_need``             energy still requested / ``e_session_kwh``             [0, 1.5]
``s{j}_left``             hours to planned departure / 8 h (0 when empty)        [0, 1]
========================  ======================================================  ===========

Forecast features use the forecaster the controller is prepared with
(``prepare(context)``); a controller that is never prepared holds the present value.

Action (39 values in [0, 1] for the Iquitos site: battery + one per socket)
---------------------------------------------------------------------------
* ``bess``: ``p_bess_kw = (2a − 1) × limit`` — 0.5 is idle, 1 full discharge at
  ``bess_discharge_kw``, 0 full charge at ``bess_charge_kw``; a dead band of
  ``|2a − 1| < 0.02`` gives exactly 0 kW.
* ``s{j}``: socket limit ``a × rating_j`` [kW].

The spec (feature names, bounds, scales, options, version) is hashed; the hash travels in
the ONNX file's metadata and a policy whose hash differs from the spec this code builds
for the site is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from array import array
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from twin.config import SiteConfig
from twin.forecast import Forecaster
from twin.inputs import SocketSpec
from twin.types import FloatArray, Setpoints, SiteObservation, SocketArrays

#: Bump when the meaning or order of a feature changes (changes every hash).
ENCODING_VERSION = 1
#: ONNX metadata keys.
META_SPEC = "pvbess.spec"
META_HASH = "pvbess.spec_hash"
#: Battery action dead band around idle (|2a - 1| below it gives exactly 0 kW).
BESS_DEADBAND = 0.02
#: Horizon of the "hours to departure" socket feature [h].
DEPARTURE_SCALE_H = 8.0
#: Margin before a local month's end inside which the month feature is recomputed every
#: step [s] (more than any change of a time zone's UTC offset).
MONTH_MARGIN_S = 2 * 86400.0

F32 = npt.NDArray[np.float32]
#: The clip ufunc itself (``np.clip`` adds a Python-level wrapper of ~1 µs a call).
_clip: np.ufunc = getattr(getattr(np, "_core", None), "umath", np).clip
#: ``np.copyto`` without its ``__array_function__`` dispatch (NEP 18's ``_implementation``).
_copyto: Any = getattr(np.copyto, "_implementation", np.copyto)
_multiply, _subtract = np.multiply, np.subtract
#: Action dtypes of ``ActionMapper``'s short path (native float32 / float64).
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)

#: Site features: (name, low, high).
_SITE_FEATURES: tuple[tuple[str, float, float], ...] = (
    ("pv", 0.0, 1.5), ("ev", 0.0, 1.5), ("mall", 0.0, 2.0), ("load", 0.0, 2.0),
    ("soc", 0.0, 1.0), ("soc_kwh", 0.0, 1.5), ("grid", 0.0, 2.0), ("net", -2.0, 2.0),
    ("hour_sin", -1.0, 1.0), ("hour_cos", -1.0, 1.0), ("weekday_sin", -1.0, 1.0),
    ("weekday_cos", -1.0, 1.0), ("month_sin", -1.0, 1.0), ("month_cos", -1.0, 1.0),
    ("price", 0.0, 2.0), ("peak", 0.0, 1.0), ("ev_open", 0.0, 1.0), ("waiting", 0.0, 2.0),
)


@dataclass(frozen=True)
class Scales:
    """Normalisation scales, from the site configuration.

    Attributes
    ----------
    pv_ac_kw : PV inverter AC limit [kW].
    mall_kw : 2.5 × the mall's mean demand (``e_day_kwh`` / 24 h) [kW].
    ev_kw : sum of the socket ratings [kW].
    bess_kwh : battery nominal capacity [kWh].
    bess_charge_kw, bess_discharge_kw : battery power limits [kW].
    price_per_kwh : peak energy price [currency/kWh].
    e_session_kwh : largest energy a session may request [kWh].
    """

    pv_ac_kw: float
    mall_kw: float
    ev_kw: float
    bess_kwh: float
    bess_charge_kw: float
    bess_discharge_kw: float
    price_per_kwh: float
    e_session_kwh: float

    @classmethod
    def from_site(cls, site: SiteConfig) -> Scales:
        """Scales for ``site`` (each at least a small positive number)."""
        sock = SocketSpec.from_config(site.ev)
        e_sess = max((v.e_req_kwh_max for v in site.ev.vehicles.values()), default=1.0)
        t = site.tariff
        return cls(
            pv_ac_kw=max(site.pv.p_ac_max_kw, 1.0),
            mall_kw=max(2.5 * site.mall.e_day_kwh / 24.0, 1.0),
            ev_kw=max(float(sock.p_rating_kw.sum()), 1.0),
            bess_kwh=max(site.bess.e_capacity_kwh, 1.0),
            bess_charge_kw=site.bess.p_charge_max_kw,
            bess_discharge_kw=site.bess.p_discharge_max_kw,
            price_per_kwh=max(t.max_price_per_kwh, 1e-6),
            e_session_kwh=max(e_sess, 1.0),
        )


@dataclass(frozen=True)
class Options:
    """Encoding options chosen at training time.

    Attributes
    ----------
    forecast_h : hours of PV and mall forecast in the observation (0 = none).
    """

    forecast_h: int = 4


@dataclass(frozen=True)
class Spec:
    """Observation and action spec: names, bounds, scales, options and version."""

    version: int
    options: Options
    scales: Scales
    n_sockets: int
    obs_names: tuple[str, ...]
    obs_low: tuple[float, ...]
    obs_high: tuple[float, ...]
    act_names: tuple[str, ...]
    act_low: tuple[float, ...] = field(default=())
    act_high: tuple[float, ...] = field(default=())

    @property
    def n_obs(self) -> int:
        """Length of the observation vector."""
        return len(self.obs_names)

    @property
    def n_act(self) -> int:
        """Length of the action vector."""
        return len(self.act_names)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples)."""
        d = asdict(self)
        for k in ("obs_names", "obs_low", "obs_high", "act_names", "act_low", "act_high"):
            d[k] = list(d[k])
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): what the hash is taken of."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON, first 16 hex digits."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str) -> Spec:
        """Inverse of ``to_json`` (raises ``ValueError``/``KeyError``/``TypeError`` on bad input)."""
        d = json.loads(text)
        return cls(
            version=int(d["version"]), options=Options(**d["options"]), scales=Scales(**d["scales"]),
            n_sockets=int(d["n_sockets"]), obs_names=tuple(d["obs_names"]),
            obs_low=tuple(float(x) for x in d["obs_low"]), obs_high=tuple(float(x) for x in d["obs_high"]),
            act_names=tuple(d["act_names"]), act_low=tuple(float(x) for x in d["act_low"]),
            act_high=tuple(float(x) for x in d["act_high"]),
        )

    def diff(self, other: Spec) -> list[str]:
        """Human-readable differences to ``other`` (self = expected, other = found)."""
        out: list[str] = []
        if self.version != other.version:
            out.append(f"encoding version {other.version} (this twin encodes version {self.version})")
        if self.options != other.options:
            out.append(f"options {asdict(other.options)} (expected {asdict(self.options)})")
        for k, v in asdict(self.scales).items():
            w = getattr(other.scales, k)
            if v != w:
                out.append(f"scale {k} = {w:g} (this site: {v:g})")
        if self.n_sockets != other.n_sockets:
            out.append(f"{other.n_sockets} sockets (this site: {self.n_sockets})")
        if self.obs_names != other.obs_names and self.version == other.version:
            out.append("observation feature names differ")
        if (self.obs_low, self.obs_high) != (other.obs_low, other.obs_high):
            out.append("observation bounds differ")
        if (self.act_names, self.act_low, self.act_high) != (other.act_names, other.act_low,
                                                           other.act_high):
            out.append("action names or bounds differ")
        return out


def build_spec(site: SiteConfig, options: Options | None = None) -> Spec:
    """The spec this code builds for ``site``."""
    opt = options or Options()
    if opt.forecast_h < 0 or opt.forecast_h > 48:
        raise ValueError(f"forecast_h must be in 0..48, got {opt.forecast_h}")
    n = site.ev.n_sockets
    names: list[str] = []
    low: list[float] = []
    high: list[float] = []
    for name, lo, hi in _SITE_FEATURES:
        names.append(name)
        low.append(lo)
        high.append(hi)
    for i in range(1, opt.forecast_h + 1):
        names += [f"pv_fc_h{i}", f"mall_fc_h{i}"]
        low += [0.0, 0.0]
        high += [1.5, 2.0]
    for j in range(n):
        names += [f"s{j}_plug", f"s{j}_need", f"s{j}_left"]
        low += [0.0, 0.0, 0.0]
        high += [1.0, 1.5, 1.0]
    act = ["bess"] + [f"s{j}" for j in range(n)]
    return Spec(ENCODING_VERSION, opt, Scales.from_site(site), n, tuple(names), tuple(low), tuple(high),
                tuple(act), tuple(0.0 for _ in act), tuple(1.0 for _ in act))


class Encoder:
    """Turns a ``SiteObservation`` into the observation vector of a ``Spec``.

    Stateless between steps except for caches (hour and month features, forecasts), so
    the same observation always gives the same vector. The vector is assembled in one
    preallocated float64 buffer (the site features and the precomputed forecast row
    written by one ``struct`` call into its stdlib array, socket features by ufuncs into
    strided views), cast once to float32 and clipped: the same values, bit for bit, as
    casting each feature first and clipping in float32 (the bounds are exact in both
    types and rounding is monotone).
    """

    #: Largest number of cached hour-of-day features (a live run may see any float hour).
    HOUR_CACHE_MAX = 4096

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        s = spec.scales
        self._inv_pv = 1.0 / s.pv_ac_kw
        self._inv_mall = 1.0 / s.mall_kw
        self._inv_ev = 1.0 / s.ev_kw
        self._inv_load = 1.0 / (s.ev_kw + s.mall_kw)
        self._inv_bess = 1.0 / s.bess_kwh
        self._inv_price = 1.0 / s.price_per_kwh
        self._inv_e_sess = 1.0 / s.e_session_kwh
        self._inv_n = 1.0 / max(spec.n_sockets, 1)
        self._inv_left = 1.0 / (3600.0 * DEPARTURE_SCALE_H)
        # the same doubles as 0-d arrays: a ufunc takes them without converting a Python float
        self._inv_e_sess_0d = np.array(self._inv_e_sess)
        self._inv_left_0d = np.array(self._inv_left)
        self._low = np.asarray(spec.obs_low, dtype=np.float32)
        self._high = np.asarray(spec.obs_high, dtype=np.float32)
        self._n_site = len(_SITE_FEATURES)
        self._h = spec.options.forecast_h
        self._fc0 = self._n_site
        self._s0 = self._n_site + 2 * self._h
        self._forecaster: Forecaster | None = None
        self._fc_table: FloatArray | None = None
        self._month: tuple[float, float] = (0.0, 1.0)
        self._month_lo = self._month_hi = 0.0
        self._month_start: datetime | None = None
        self._month_tz = ""
        self._month_m = -1  # the held month (0-11)
        self._zone: ZoneInfo | None = None
        self._zone_key: str | None = None  # the tz name of self._zone
        self._weekday = [(math.sin(2 * math.pi * d / 7), math.cos(2 * math.pi * d / 7)) for d in range(7)]
        self._hour_feat: dict[float, tuple[float, float]] = {}
        # the whole vector in float64: a stdlib array (cheap scalar writes) and its numpy view
        n = spec.n_sockets
        self._arr = array("d", bytes(8 * spec.n_obs))
        self._buf: FloatArray = np.frombuffer(self._arr, dtype=np.float64)
        sock = self._buf[self._s0:self._s0 + 3 * n].reshape(n, 3)
        self._plug, self._need, self._left = sock[:, 0], sock[:, 1], sock[:, 2]
        self._tmp = np.empty(n, dtype=np.float64)
        self._empty_sockets: SocketArrays | None = None
        self._t_0d = np.array(0.0)  # the step's t_s [s], set in place
        # the site features and the forecast row, written in one call: native doubles (the
        # same bits as the floats) and the row's bytes as they are
        self._pack = struct.Struct(f"{self._n_site}d{16 * self._h}s").pack_into
        self._n_obs = spec.n_obs
        self._fc_nb = 16 * self._h  # bytes of a forecast row
        self._fc_bytes = b""  # the precomputed forecast features, row after row
        self._fc_rows = 0

    def prepare(self, forecaster: Forecaster | None, n_steps: int = 0, dt_s: float = 0.0) -> None:
        """Use ``forecaster`` for the look-ahead features (None: hold the present value).

        With the horizon (``n_steps`` of ``dt_s``) and a forecaster whose value for a step
        does not depend on when it is asked (perfect, noisy), the hourly means of the whole
        horizon are computed once here — the same sums, in the same order, as per step.
        """
        from twin.forecast import PerfectForecaster, PersistenceForecaster

        self._forecaster = forecaster
        self._fc_table = None
        self._fc_bytes = b""
        self._fc_rows = 0
        h = self._h
        if (h and n_steps > 0 and dt_s > 0 and isinstance(forecaster, PerfectForecaster)
                and not isinstance(forecaster, PersistenceForecaster)):
            sph = max(1, round(3600.0 / dt_s))
            w = h * sph
            table = np.empty((n_steps, 2 * h))
            for col, series, inv in ((0, forecaster.pv_kw(1, n_steps - 1 + w), self._inv_pv),
                                     (1, forecaster.mall_kw(1, n_steps - 1 + w), self._inv_mall)):
                win = np.lib.stride_tricks.sliding_window_view(series, w)[:n_steps]
                table[:, col::2] = win.reshape(n_steps, h, sph).sum(axis=2) * (inv / sph)
            self._fc_table = table
            self._fc_bytes = table.tobytes()
            self._fc_rows = n_steps

    def _month_feat(self, obs: SiteObservation) -> tuple[float, float]:
        # the month is held while t_s stays in [t_lo, t_hi): from a time it was computed at
        # to 2 days before the next local month starts (no UTC-offset change is that large)
        start = obs.start_utc
        t_s = obs.t_s
        if (self._month_lo <= t_s < self._month_hi and obs.tz == self._month_tz
                and (start is self._month_start or start == self._month_start)):
            return self._month
        tz = obs.tz
        if tz != self._zone_key:
            self._zone, self._zone_key = ZoneInfo(tz), tz
        when = (start + timedelta(seconds=t_s)).astimezone(self._zone)
        m = when.month - 1
        if m == self._month_m and tz == self._month_tz and (start is self._month_start
                                                            or start == self._month_start):
            return self._month  # the same month (within the margin before its end): held
        self._month_m = m
        self._month = (math.sin(2 * math.pi * m / 12), math.cos(2 * math.pi * m / 12))
        local = when.replace(tzinfo=None)
        nxt = datetime(local.year + (local.month == 12), local.month % 12 + 1, 1)
        self._month_lo = t_s
        self._month_hi = t_s + (nxt - local).total_seconds() - MONTH_MARGIN_S
        self._month_start, self._month_tz = start, obs.tz
        return self._month

    def _hour(self, h: float) -> tuple[float, float]:
        cache = self._hour_feat
        if len(cache) >= self.HOUR_CACHE_MAX:
            cache.clear()
        f = (math.sin(2 * math.pi * h / 24.0), math.cos(2 * math.pi * h / 24.0))
        cache[h] = f
        return f

    def encode(self, obs: SiteObservation) -> F32:
        """The observation vector for ``obs`` (a new float32 array, clipped to the bounds)."""
        k, t_s, _, start, tz, h, weekday, p_pv, p_mall, p_ev, _, ev_open, b, s, tariff, n_waiting, _, _ = obs
        load = p_ev + p_mall
        hf = self._hour_feat.get(h) or self._hour(h)
        if (self._month_lo <= t_s < self._month_hi and tz == self._month_tz
                and (start is self._month_start or start == self._month_start)):
            mf = self._month
        else:
            mf = self._month_feat(obs)
        wf = self._weekday[weekday % 7]
        inv_pv, inv_load = self._inv_pv, self._inv_load
        grid = load - p_pv - b.p_kw  # max(0.0, grid) below, as the builtin (NaN and -0.0 give 0.0)
        if k < self._fc_rows:  # precomputed: the row's bytes
            nb = self._fc_nb
            fc = self._fc_bytes[k * nb:k * nb + nb]
        else:
            fc = self._forecast(obs).tobytes() if self._h else b""
        self._pack(self._arr, 0, p_pv * inv_pv, p_ev * self._inv_ev, p_mall * self._inv_mall,
                   load * inv_load, b.soc_frac, b.e_kwh * self._inv_bess,
                   (grid if grid > 0.0 else 0.0) * inv_load, (load - p_pv) * inv_pv,
                   hf[0], hf[1], wf[0], wf[1], mf[0], mf[1],
                   tariff.price_per_kwh * self._inv_price, 1.0 if tariff.is_peak else 0.0,
                   1.0 if ev_open else 0.0, n_waiting * self._inv_n, fc)
        if s is not self._empty_sockets:  # the socket features (inline: a call less)
            occ = s.occupied
            self._plug[...] = occ  # as np.copyto, without its dispatch
            _multiply(s.e_remaining_kwh, self._inv_e_sess_0d, self._need)
            t0 = self._t_0d
            t0[()] = t_s
            tmp = _subtract(s.t_departure_s, t0, self._tmp)
            _multiply(tmp, self._inv_left_0d, tmp)
            left = self._left
            left.fill(0.0)
            _copyto(left, tmp, where=occ)
            # an empty site's socket features do not depend on the time: when the same
            # (read-only) arrays come again with no vehicle plugged, the features held stay
            self._empty_sockets = s if s.n_occupied == 0 and not occ.any() else None
        out = self._buf.astype(np.float32)
        _clip(out, self._low, self._high, out)
        return out

    def _forecast(self, obs: SiteObservation) -> FloatArray:
        if self._fc_table is not None and obs.k < self._fc_table.shape[0]:
            return self._fc_table[obs.k]
        h = self._h
        fc = self._forecaster
        res = np.empty(2 * h, dtype=np.float64)
        if fc is None:
            res[0::2] = obs.p_pv_kw * self._inv_pv
            res[1::2] = obs.p_mall_kw * self._inv_mall
            return res
        sph = max(1, round(3600.0 / obs.dt_s))
        k1 = obs.k + 1
        # hourly means (sum x 1/sph: np.mean costs several µs more per call)
        res[0::2] = fc.pv_kw(k1, h * sph).reshape(h, sph).sum(axis=1) * (self._inv_pv / sph)
        res[1::2] = fc.mall_kw(k1, h * sph).reshape(h, sph).sum(axis=1) * (self._inv_mall / sph)
        return res


#: ``Encoder.encode`` unpacks a ``SiteObservation`` (18 fields) by position.
_OBS_PREFIX = ("k", "t_s", "dt_s", "start_utc", "tz", "hour", "weekday", "p_pv_kw", "p_mall_kw",
               "p_ev_kw", "p_ev_inflexible_kw", "ev_open", "bess", "sockets", "tariff", "n_waiting")
if (SiteObservation._fields[:len(_OBS_PREFIX)] != _OBS_PREFIX
        or len(SiteObservation._fields) != 18):  # pragma: no cover - a loud guard
    raise ImportError("SiteObservation's fields changed: update Encoder.encode")


#: Phase codes the ``rl`` controller records.
PHASES = {0: "rl_idle", 1: "rl_charge", 2: "rl_discharge"}


def action_to_setpoints(action: npt.NDArray[np.floating[Any]], obs: SiteObservation,
                        scales: Scales) -> Setpoints:
    """Map an action vector (values in [0, 1], clipped) to ``Setpoints``.

    Parameters
    ----------
    action : battery value first, then one value per socket.
    obs : the observation the action answers (for the socket ratings).
    scales : the spec's scales (battery power limits [kW]).
    """
    a = _clip(action, 0.0, 1.0, dtype=np.float64)  # a new float64 array
    if a.ndim != 1:
        a = a.reshape(-1)
    rating = obs.sockets.p_rating_kw
    if len(a) != len(rating) + 1:
        raise ValueError(f"action has {len(a)} values; this site needs {len(rating) + 1} "
                         "(battery + one per socket)")
    x = 2.0 * a.item(0) - 1.0
    if abs(x) < BESS_DEADBAND:
        p, phase = 0.0, 0
    elif x > 0.0:
        p, phase = x * scales.bess_discharge_kw, 2
    else:
        p, phase = x * scales.bess_charge_kw, 1
    return Setpoints(p, np.multiply(a[1:], rating), phase)


class ActionMapper:
    """``action_to_setpoints`` for one spec, bit for bit, with its constants held.

    A 1-D float32 / float64 array of the spec's length on the same (read-only) socket
    ratings as the call before takes the short path: a float64 copy clipped in place (the
    same values as clipping into float64), one product with the ratings behind a leading
    1.0 (the battery value times 1.0 is itself), the socket limits a view of that product.
    Anything else (lists, other shapes or dtypes, writeable ratings) goes through
    ``action_to_setpoints``.

    Parameters
    ----------
    spec : the observation / action spec (its scales and action length).
    """

    def __init__(self, spec: Spec) -> None:
        self.scales = spec.scales
        self._n_act = spec.n_act
        self._dis_kw = spec.scales.bess_discharge_kw
        self._ch_kw = spec.scales.bess_charge_kw
        self._zero = np.array(0.0)
        self._one = np.array(1.0)
        self._rating: FloatArray | None = None
        self._rating_ext: FloatArray = np.ones(1)

    def __call__(self, action: npt.NDArray[np.floating[Any]], obs: SiteObservation) -> Setpoints:
        """The setpoints for ``action`` answering ``obs`` (see ``action_to_setpoints``)."""
        rating = obs.sockets.p_rating_kw
        if rating is not self._rating:  # held only while it cannot change (read-only)
            if rating.shape != (self._n_act - 1,) or rating.flags.writeable:
                return action_to_setpoints(action, obs, self.scales)
            self._rating = rating
            self._rating_ext = np.concatenate(([1.0], rating))
        if (type(action) is not np.ndarray or action.shape != self._rating_ext.shape
                or (action.dtype is not _F32 and action.dtype is not _F64)):
            return action_to_setpoints(action, obs, self.scales)
        a = action.astype(np.float64)  # a new array: cast, then clip in place (no buffered cast)
        _clip(a, self._zero, self._one, a)
        x = 2.0 * a.item(0) - 1.0
        limits = _multiply(a, self._rating_ext, a)[1:]
        if -BESS_DEADBAND < x < BESS_DEADBAND:
            return _setpoints(Setpoints, (0.0, limits, 0, None))
        if x > 0.0:
            return _setpoints(Setpoints, (x * self._dis_kw, limits, 2, None))
        return _setpoints(Setpoints, (x * self._ch_kw, limits, 1, None))


#: ``ActionMapper`` builds ``Setpoints`` without the named tuple's Python-level ``__new__``.
_setpoints = tuple.__new__
if Setpoints._fields != ("p_bess_kw", "p_socket_max_kw", "phase", "p_bess_split_kw"):  # pragma: no cover
    raise ImportError("Setpoints' fields changed: update ActionMapper")


def setpoints_to_action(sp: Setpoints, obs: SiteObservation, scales: Scales) -> FloatArray:
    """The action that ``action_to_setpoints`` maps to ``sp`` (for imitation / tests)."""
    rating = obs.sockets.p_rating_kw
    p = float(sp.p_bess_kw)
    lim = scales.bess_discharge_kw if p > 0 else scales.bess_charge_kw
    x = 0.0 if lim <= 0 else max(-1.0, min(1.0, p / lim))
    a = np.empty(rating.shape[0] + 1)
    a[0] = 0.5 * (x + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        a[1:] = np.where(rating > 0, np.asarray(sp.p_socket_max_kw) / rating, 0.0)
    return np.clip(a, 0.0, 1.0)


__all__ = ["BESS_DEADBAND", "ENCODING_VERSION", "META_HASH", "META_SPEC", "PHASES", "ActionMapper", "Encoder",
           "Options", "Scales", "Spec", "action_to_setpoints", "build_spec", "setpoints_to_action"]

