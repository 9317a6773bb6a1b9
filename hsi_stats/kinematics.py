"""The driving features of a vehicle relative to the ego, defined once for every source that computes them.

The synthetic traffic (:mod:`hsi_stats.synthetic`) and live highway-env recording
(:mod:`hsi_stats.capture.highway`) both derive the catalog's features from relative kinematics here, with the
definitions of the driving logs:

- ``distance_to_ego`` :math:`d = \\lVert \\Delta p \\rVert` (m), with :math:`\\Delta p = p_v - p_{ego}`;
- ``closing_speed`` :math:`c = -\\Delta p \\cdot \\Delta v / d` (m/s): the rate at which the distance shrinks;
- ``ttc`` :math:`d / c` when :math:`c > 0.5` m/s, else 5 s, clipped to [0, 5] s (censored, as the logs store it);
- ``is_ahead`` / ``is_behind``: the longitudinal offset in the road frame is positive / negative;
- ``is_left`` / ``is_right``: the lateral offset in the road frame is more than half a lane to the left / right;
- ``agent_speeds``: the vehicle's own speed (m/s).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["FEATURE_NAMES", "TTC_MAX", "TTC_MIN_CLOSING", "censored_ttc", "driving_features"]

FEATURE_NAMES = ("ttc", "distance_to_ego", "closing_speed", "is_ahead", "is_behind", "is_left", "is_right",
                 "agent_speeds")
#: TTC is censored at this value (s), and given it when the closing speed is at most :data:`TTC_MIN_CLOSING`.
TTC_MAX = 5.0
TTC_MIN_CLOSING = 0.5


def censored_ttc(distance: ArrayLike, closing: ArrayLike) -> NDArray[np.float64]:
    """TTC censored as in the driving logs: ``d / c`` when ``c > 0.5`` m/s, else 5 s; clipped to [0, 5].

    >>> censored_ttc([10.0, 10.0, 1.0], [5.0, 0.1, 100.0]).tolist()
    [2.0, 5.0, 0.01]
    """
    d, c = np.asarray(distance, dtype=np.float64), np.asarray(closing, dtype=np.float64)
    approaching = c > TTC_MIN_CLOSING
    raw = np.where(approaching, d / np.where(approaching, c, 1.0), TTC_MAX)
    return np.clip(raw, 0.0, TTC_MAX)


def driving_features(*, dx: ArrayLike, dy: ArrayLike, dvx: ArrayLike, dvy: ArrayLike, speed: ArrayLike,
                     longitudinal: ArrayLike, lateral: ArrayLike, half_lane: float) -> dict[str, NDArray[np.float64]]:
    """The catalog's driving features from relative kinematics (any common shape).

    Parameters
    ----------
    dx, dy, dvx, dvy : array_like
        Position and velocity of each vehicle minus the ego's, in a Cartesian frame (m, m/s).
    speed : array_like
        Each vehicle's own speed (m/s).
    longitudinal, lateral : array_like
        The vehicle's offset from the ego in the road frame: along the road (positive ahead) and across it
        (positive to the left), in metres.
    half_lane : float
        Half a lane's width (m): a vehicle is left or right beyond it.

    Examples
    --------
    >>> f = driving_features(dx=[20.0], dy=[0.0], dvx=[-4.0], dvy=[0.0], speed=[21.0], longitudinal=[20.0],
    ...                      lateral=[0.0], half_lane=2.0)
    >>> [float(f[name][0]) for name in ("ttc", "closing_speed", "is_ahead", "is_left")]
    [5.0, 4.0, 1.0, 0.0]
    """
    dx, dy = np.asarray(dx, dtype=np.float64), np.asarray(dy, dtype=np.float64)
    longitudinal, lateral = np.asarray(longitudinal, dtype=np.float64), np.asarray(lateral, dtype=np.float64)
    distance = np.hypot(dx, dy)
    closing = -(dx * np.asarray(dvx, dtype=np.float64) + dy * np.asarray(dvy, dtype=np.float64)) / np.maximum(
        distance, 1e-9)
    values = {
        "ttc": censored_ttc(distance, closing), "distance_to_ego": distance, "closing_speed": closing,
        "is_ahead": longitudinal > 0, "is_behind": longitudinal < 0, "is_left": lateral > half_lane,
        "is_right": lateral < -half_lane, "agent_speeds": speed,
    }
    return {name: np.asarray(values[name], dtype=np.float64) for name in FEATURE_NAMES}
