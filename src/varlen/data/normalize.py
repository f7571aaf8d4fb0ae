"""Per-feature statistics over real steps only: pads and NaN never count.

:class:`Standardizer` learns a per-feature mean and standard deviation from the real
steps of a batch, given either as a :class:`~varlen.data.ragged.Ragged` (every stored
step is real) or as a padded array ``(B, T, F)`` with a ``mask (B, T)`` (True = real
step) or ``lengths (B,)``. It then standardizes and de-standardizes batches in the same
layouts, writing only real steps: padded steps keep their exact original values.

:func:`masked_mean_std` is the functional core: raw statistics, no policy.

Statistics are computed in float64 with a compensated two-pass algorithm per batch, and
batches are combined with Chan's parallel formula (:meth:`Standardizer.partial_fit`,
:meth:`Standardizer.merge`), so streaming fits match one fit over all the data.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from varlen._checks import check_lengths_array, check_side, error_context, unplaced
from varlen._types import AnyArray, BoolArray, Padding
from varlen.data.masks import _lengths_to_mask
from varlen.data.ragged import Ragged

__all__ = ["MeanStd", "Standardizer", "masked_mean_std"]

_X = TypeVar("_X", bound=Ragged | AnyArray)
_Float64 = NDArray[np.float64]
_STATE_VERSION = 1
_DEFAULT_EPS = 1e-10


@dataclass(frozen=True, eq=False)
class MeanStd:
    """Per-feature statistics over real, non-NaN steps (a frozen value).

    Attributes:
        mean: ``(F,)`` float64 mean; NaN where ``count == 0``.
        std: ``(F,)`` float64 population standard deviation (``ddof=0``); NaN where
            ``count == 0``.
        count: ``(F,)`` float64 number of real, non-NaN steps per feature.
    """

    mean: _Float64
    std: _Float64
    count: _Float64


class _Moments(NamedTuple):
    """``n`` (count), ``mean`` and ``m2`` (sum of squared deviations), each ``(F,)`` float64."""

    n: _Float64
    mean: _Float64
    m2: _Float64


# --------------------------------------------------------------------------- kernels


def _moments(values: AnyArray) -> _Moments:
    """Return the moments of ``values (N, F)`` per feature, ignoring NaN.

    Two passes in float64: the mean, then the squared deviations with the compensation
    term ``sum(dev) ** 2 / n`` that cancels the rounding error of the mean. Features
    with no finite step get ``mean = NaN`` and ``m2 = 0``.
    """
    v = values.astype(np.float64, copy=False)  # (N, F); read only below
    real = ~np.isnan(v)  # (N, F)
    count = real.sum(axis=0, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(real, v, 0.0).sum(axis=0) / count  # NaN where count == 0
        dev = np.where(real, v - mean, 0.0)  # (N, F)
        m2 = (dev * dev).sum(axis=0) - dev.sum(axis=0) ** 2 / count
    m2 = np.where(count > 0, np.maximum(m2, 0.0), 0.0)
    return _Moments(count, mean, m2)


def _merge(a: _Moments, b: _Moments) -> _Moments:
    """Combine the moments of two disjoint sets of steps (Chan et al., parallel variance).

    Features with a zero count on one side take the other side's moments exactly.
    """
    n = a.n + b.n
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = b.mean - a.mean
        mean = a.mean + delta * (b.n / n)
        m2 = a.m2 + b.m2 + delta * delta * (a.n * b.n / n)
    mean = np.where(a.n == 0, b.mean, np.where(b.n == 0, a.mean, mean))
    m2 = np.where(a.n == 0, b.m2, np.where(b.n == 0, a.m2, m2))
    return _Moments(n, mean, m2)


def _std(moments: _Moments) -> _Float64:
    """Population standard deviation; NaN where ``count == 0``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(moments.m2 / moments.n)


# ----------------------------------------------------------------------- validation


def _check_numeric(name: str, array: AnyArray) -> None:
    """Raise ``TypeError`` unless ``array`` has an integer or floating dtype."""
    dtype = array.dtype
    if dtype == np.bool_ or not (
        np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise unplaced(
            TypeError(f"{name} must have an integer or floating dtype, got dtype {dtype}.")
        )


def _check_no_inf(values: AnyArray) -> None:
    """Raise ``ValueError`` if ``values (N, F)`` holds an infinity."""
    if np.issubdtype(values.dtype, np.floating):
        bad = np.isinf(values).any(axis=0)
        if bad.any():
            feature = int(np.argmax(bad))
            raise unplaced(
                ValueError(
                    f"x must be finite or NaN at real steps, got an infinity in "
                    f"feature {feature}. Replace it with NaN to ignore it."
                )
            )


def _padded_mask(x: AnyArray, mask: Any, lengths: Any, padding: object) -> BoolArray:
    """Return the ``(B, T)`` real-step mask of a padded ``x (B, T, F)`` from mask or lengths."""
    if (mask is None) == (lengths is None):
        got = "both" if mask is not None else "neither"
        raise unplaced(
            ValueError(f"pass exactly one of mask or lengths with a padded x, got {got}.")
        )
    B, T = x.shape[:2]
    if lengths is not None:
        side = check_side(None, "padding", padding)
        kept = check_lengths_array(None, lengths, maxlen=T)
        if kept.shape[0] != B:
            raise unplaced(ValueError(f"lengths must have shape (B,) = ({B},), got {kept.shape}."))
        return _lengths_to_mask(kept, T, side)
    real = np.asarray(mask)
    if real.dtype != np.bool_:
        raise unplaced(
            TypeError(
                f"mask must have dtype bool (True = real step), got dtype {real.dtype}. "
                "Convert with mask.astype(bool)."
            )
        )
    if real.shape != (B, T):
        raise unplaced(ValueError(f"mask must have shape (B, T) = {(B, T)}, got {real.shape}."))
    return real


def _real_values(
    x: Any, mask: Any, lengths: Any, padding: object
) -> tuple[AnyArray, BoolArray | None]:
    """Return ``(values (N, F), mask)`` for a Ragged (mask None) or padded ``x``."""
    if isinstance(x, Ragged):
        if mask is not None or lengths is not None:
            raise unplaced(
                ValueError(
                    f"mask and lengths must be None for a Ragged x, got "
                    f"{'mask' if mask is not None else 'lengths'}. A Ragged stores only real steps."
                )
            )
        _check_numeric("x", x.values)
        if x.values.ndim != 2:
            raise unplaced(
                ValueError(
                    f"x.values must have shape (N, F), got {x.values.shape}. "
                    "Add a feature axis with values[:, None] or reshape to (N, F)."
                )
            )
        return x.values, None
    array = np.asarray(x)
    _check_numeric("x", array)
    if array.ndim != 3:
        raise unplaced(
            ValueError(
                f"x must be a Ragged or an array of shape (B, T, F), got shape "
                f"{array.shape}. Add a feature axis with x[..., None]."
            )
        )
    real = _padded_mask(array, mask, lengths, padding)
    return array[real], real


def _check_eps(eps: object) -> float:
    """Return ``eps`` as a finite float ``>= 0``, else raise."""
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating):
        raise unplaced(TypeError(f"eps must be a float, got {eps!r}."))
    if not math.isfinite(eps) or eps < 0:
        raise unplaced(ValueError(f"eps must be finite and >= 0, got {eps!r}."))
    return float(eps)


# ----------------------------------------------------------------------- functional


def masked_mean_std(x: Any, mask: Any = None) -> MeanStd:
    """Return the per-feature mean, standard deviation and count over real, non-NaN steps.

    Steps where ``mask`` is False and NaN entries are ignored; the result is the same as
    ``np.nanmean`` / ``np.nanstd`` (``ddof=0``) over the selected steps, feature by
    feature, computed in float64 with a compensated two-pass algorithm. Features with no
    real non-NaN step get NaN mean and std (and no warning); :class:`Standardizer`
    replaces these by 0 and 1.

    Args:
        x: ``(*S, F)`` integer or floating array (for example ``(B, T, F)`` padded or
            ``(N, F)`` flat), or a :class:`~varlen.data.ragged.Ragged` with values ``(N, F)``.
        mask: ``(*S,)`` bool, True = real step; ``None`` means every step is real.
            Must be ``None`` for a Ragged.

    Returns:
        ``MeanStd(mean, std, count)``, each ``(F,)`` float64.

    Raises:
        TypeError: If ``x`` is not integer or floating, or ``mask`` is not bool.
        ValueError: If ``x`` has no feature axis, ``mask`` has the wrong shape or is given
            with a Ragged, or a real step holds an infinity.

    Example:
        >>> x = np.array([[[1.0], [3.0], [99.0]], [[np.nan], [5.0], [-7.0]]])  # (2, 3, 1)
        >>> mask = np.array([[True, True, False], [True, True, False]])
        >>> masked_mean_std(x, mask)
        MeanStd(mean=array([3.]), std=array([1.63299316]), count=array([3.]))
    """
    where = "masked_mean_std"
    with error_context(where):
        if isinstance(x, Ragged):
            values, _ = _real_values(x, mask, None, "post")
        else:
            array = np.asarray(x)
            _check_numeric("x", array)
            if array.ndim < 1:
                raise ValueError(f"{where}: x must have shape (*S, F), got a scalar.")
            values = _masked_flat(array, mask)
        _check_no_inf(values)
        moments = _moments(values)
        return MeanStd(moments.mean, _std(moments), moments.n)


def _masked_flat(array: AnyArray, mask: Any) -> AnyArray:
    """Return the real steps of ``array (*S, F)`` as ``(N, F)``."""
    F = array.shape[-1]
    if mask is None:
        return array.reshape(-1, F)
    real: BoolArray = np.asarray(mask)
    if real.dtype != np.bool_:
        raise unplaced(
            TypeError(
                f"mask must have dtype bool (True = real step), got dtype {real.dtype}. "
                "Convert with mask.astype(bool)."
            )
        )
    if real.shape != array.shape[:-1]:
        raise unplaced(
            ValueError(f"mask must have shape x.shape[:-1] = {array.shape[:-1]}, got {real.shape}.")
        )
    flat: AnyArray = array[real]
    return flat


# ----------------------------------------------------------------------- the class


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Fitted per-feature standardization ``(x - mean) / scale`` over real steps.

    Build it with :meth:`fit` (or :meth:`partial_fit` / :meth:`merge` for streamed or
    sharded data) rather than by hand. It is an immutable value: arrays are copied to
    float64 and marked read-only, and every method returns new objects. Save it without
    pickle as ``json.dump(scaler.state_dict(), f)`` and load it with
    :meth:`from_state_dict`.

    Statistics ignore padded steps and NaN entries. Contract of the edge cases:

    - **Constant features.** A feature whose ``std <= eps * |mean|`` (this includes
      ``std == 0``) gets ``scale = 1``, so :meth:`transform` returns ``x - mean``
      (about 0 on the fitted data) instead of inf or NaN. ``std`` keeps the raw value.
    - **Features with no real non-NaN step** (``count == 0``) get ``mean = 0`` and
      ``std = 1``; :meth:`fit` warns (``RuntimeWarning``) naming them.
    - **NaN at real steps** is ignored by the statistics and stays NaN in the outputs.
      Infinities at real steps are rejected by :meth:`fit`.
    - **Dtypes.** Statistics are float64. Outputs keep a floating input's dtype (a
      float32 batch stays float32); integer inputs give float64 outputs.

    Args:
        mean: ``(F,)`` per-feature mean; finite.
        std: ``(F,)`` per-feature population standard deviation (``ddof=0``); finite, ``>= 0``.
        count: ``(F,)`` number of real non-NaN steps behind the statistics; ``>= 0``.
        eps: Relative tolerance below which a feature counts as constant; finite, ``>= 0``.

    Raises:
        TypeError: If ``eps`` is not a float.
        ValueError: If the arrays are not 1-D of equal length or break the rules above.

    Example:
        >>> x = np.array([[[1.0], [3.0], [np.nan]], [[5.0], [0.0], [0.0]]])  # (B, T, F) = (2, 3, 1)
        >>> lengths = np.array([2, 1])
        >>> scaler = Standardizer.fit(x, lengths=lengths)
        >>> scaler.mean, scaler.std, scaler.count
        (array([3.]), array([1.63299316]), array([3.]))
        >>> scaler.transform(x, lengths=lengths)[..., 0]  # pads keep their values
        array([[-1.22474487,  0.        ,         nan],
               [ 1.22474487,  0.        ,  0.        ]])
    """

    mean: _Float64
    std: _Float64
    count: _Float64
    eps: float = _DEFAULT_EPS

    def __post_init__(self) -> None:
        where = "Standardizer"
        arrays = {}
        for name in ("mean", "std", "count"):
            array = np.array(getattr(self, name), dtype=np.float64, copy=True)
            if array.ndim != 1:
                raise ValueError(f"{where}: {name} must have shape (F,), got {array.shape}.")
            if not np.isfinite(array).all():
                raise ValueError(f"{where}: {name} must be finite, got {array.tolist()!r}.")
            array.flags.writeable = False
            arrays[name] = array
        F = arrays["mean"].shape[0]
        for name in ("std", "count"):
            if arrays[name].shape != (F,):
                raise ValueError(
                    f"{where}: {name} must have shape (F,) = ({F},) like mean, "
                    f"got {arrays[name].shape}."
                )
            if (arrays[name] < 0).any():
                raise ValueError(f"{where}: {name} must be >= 0, got {arrays[name].tolist()!r}.")
        for name, array in arrays.items():
            object.__setattr__(self, name, array)
        with error_context(where):
            object.__setattr__(self, "eps", _check_eps(self.eps))

    # ------------------------------------------------------------------ properties

    @property
    def num_features(self) -> int:
        """Number of features ``F``."""
        return int(self.mean.shape[0])

    @property
    def scale(self) -> _Float64:
        """``(F,)`` float64 divisor used by :meth:`transform`: ``std``, or 1 if constant."""
        constant = self.std <= self.eps * np.abs(self.mean)
        return np.where(constant, 1.0, self.std)

    # ---------------------------------------------------------------------- fitting

    @classmethod
    def _from_moments(cls, moments: _Moments, eps: float) -> Standardizer:
        """Apply the count-0 policy (mean 0, std 1) and build without re-deriving moments."""
        empty = moments.n == 0
        mean = np.where(empty, 0.0, moments.mean)
        std = np.where(empty, 1.0, _std(moments))
        return cls(mean, std, moments.n, eps)

    def _moments(self) -> _Moments:
        """The moments behind this standardizer (``m2 = std ** 2 * count``)."""
        return _Moments(self.count, self.mean, self.std * self.std * self.count)

    @classmethod
    def fit(
        cls,
        x: Ragged | AnyArray,
        *,
        mask: BoolArray | None = None,
        lengths: Any = None,
        padding: Padding = "post",
        eps: float = _DEFAULT_EPS,
    ) -> Standardizer:
        """Learn per-feature mean and std from the real, non-NaN steps of ``x``.

        Padded ``x`` (``B = 0`` and ``T = 0`` allowed) needs exactly one of ``mask`` or
        ``lengths``; a Ragged needs neither. Features without any real non-NaN step get
        mean 0 and std 1, with a ``RuntimeWarning`` naming them.

        Args:
            x: A Ragged with values ``(N, F)``, or a padded ``(B, T, F)`` array; integer
                or floating.
            mask: ``(B, T)`` bool, True = real step (padded ``x`` only).
            lengths: ``(B,)`` integer lengths ``0 <= T_i <= T`` (padded ``x`` only).
            padding: Side holding the padding when ``lengths`` is given.
            eps: Relative tolerance for constant features (see the class docstring).

        Returns:
            A new fitted :class:`Standardizer`.

        Raises:
            TypeError: If ``x`` is not integer or floating, ``mask`` / ``lengths`` have
                the wrong dtype, or ``eps`` is not a float.
            ValueError: If shapes are wrong, both or neither of ``mask`` and ``lengths``
                are given for padded ``x`` (or either for a Ragged), ``padding`` is not
                ``'pre'`` or ``'post'``, ``eps`` is negative or not finite, or a real
                step is infinite.
        """
        where = "Standardizer.fit"
        with error_context(where):
            eps = _check_eps(eps)
            values, _ = _real_values(x, mask, lengths, padding)
            _check_no_inf(values)
            moments = _moments(values)
            empty = np.flatnonzero(moments.n == 0)
            if empty.size:
                warnings.warn(
                    f"{where}: features {empty.tolist()} have no real non-NaN step; they get "
                    "mean 0 and std 1. Drop them or check the mask.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return cls._from_moments(moments, eps)

    def partial_fit(
        self,
        x: Ragged | AnyArray,
        *,
        mask: BoolArray | None = None,
        lengths: Any = None,
        padding: Padding = "post",
    ) -> Standardizer:
        """Return a new standardizer fitted on this one's data plus the real steps of ``x``.

        The statistics are combined exactly (Chan's parallel formula), so a chain of
        ``partial_fit`` calls matches one :meth:`fit` over all batches up to rounding.
        Start from :meth:`empty` or from a first :meth:`fit`. Unlike :meth:`fit`, this
        does not warn about features still without steps (a later batch may fill them):
        check ``count`` at the end.

        Args:
            x: A Ragged with values ``(N, F)``, or a padded ``(B, T, F)`` array.
            mask: ``(B, T)`` bool, True = real step (padded ``x`` only).
            lengths: ``(B,)`` integer lengths (padded ``x`` only).
            padding: Side holding the padding when ``lengths`` is given.

        Returns:
            A new :class:`Standardizer` with this one's ``eps``.

        Raises:
            TypeError: As :meth:`fit`.
            ValueError: As :meth:`fit`, or if ``x`` does not have ``F`` features.
        """
        where = "Standardizer.partial_fit"
        with error_context(where):
            values, _ = _real_values(x, mask, lengths, padding)
            self._check_features(values.shape[1])
            _check_no_inf(values)
            return self._from_moments(_merge(self._moments(), _moments(values)), self.eps)

    def merge(self, other: Standardizer) -> Standardizer:
        """Return the standardizer of the union of this one's and ``other``'s steps.

        Use it to combine statistics fitted on shards in parallel. Keeps this one's ``eps``.

        Args:
            other: A standardizer with the same number of features.

        Returns:
            A new :class:`Standardizer`.

        Raises:
            TypeError: If ``other`` is not a :class:`Standardizer`.
            ValueError: If the feature counts differ.
        """
        where = "Standardizer.merge"
        with error_context(where):
            if not isinstance(other, Standardizer):
                raise TypeError(
                    f"{where}: other must be a Standardizer, got {type(other).__name__}."
                )
            self._check_features(other.num_features, name="other")
            return self._from_moments(_merge(self._moments(), other._moments()), self.eps)

    @classmethod
    def empty(cls, num_features: int, *, eps: float = _DEFAULT_EPS) -> Standardizer:
        """Return a standardizer with no data yet, the starting point for :meth:`partial_fit`.

        Args:
            num_features: ``F >= 0``.
            eps: Relative tolerance for constant features.

        Returns:
            A :class:`Standardizer` with ``count = 0``, ``mean = 0`` and ``std = 1``.

        Raises:
            TypeError: If ``num_features`` is not an int or ``eps`` is not a float.
            ValueError: If ``num_features < 0`` or ``eps`` is negative or not finite.
        """
        where = "Standardizer.empty"
        with error_context(where):
            if isinstance(num_features, bool) or not isinstance(num_features, int | np.integer):
                raise TypeError(f"{where}: num_features must be an int, got {num_features!r}.")
            if num_features < 0:
                raise ValueError(f"{where}: num_features must be >= 0, got {num_features!r}.")
            F = int(num_features)
            return cls(np.zeros(F), np.ones(F), np.zeros(F), _check_eps(eps))

    # --------------------------------------------------------------------- applying

    def _check_features(self, F: int, *, name: str = "x") -> None:
        if self.num_features != F:
            raise unplaced(
                ValueError(
                    f"{name} must have F = {self.num_features} features like the fitted "
                    f"statistics, got {F}."
                )
            )

    def _apply(self, x: _X, mask: Any, lengths: Any, padding: object, *, inverse: bool) -> _X:
        """Map the real steps of ``x`` forward or back; pads are copied unchanged."""
        values, real = _real_values(x, mask, lengths, padding)
        self._check_features(values.shape[1])
        dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
        v = values.astype(np.float64, copy=False)  # (N, F)
        mapped = v * self.scale + self.mean if inverse else (v - self.mean) / self.scale
        if isinstance(x, Ragged):  # same offsets, new values
            return cast(_X, x.with_values(mapped.astype(dtype, copy=False)))
        out = np.array(x, dtype=dtype, copy=True)  # (B, T, F); pads keep their bits
        out[real] = mapped
        return cast(_X, out)

    def transform(
        self,
        x: _X,
        *,
        mask: BoolArray | None = None,
        lengths: Any = None,
        padding: Padding = "post",
    ) -> _X:
        """Standardize the real steps of ``x``: ``(x - mean) / scale``.

        Padded steps are copied unchanged, bit for bit (NaN and garbage pads included).
        NaN at real steps stays NaN. ``x`` is never modified.

        Args:
            x: A Ragged with values ``(N, F)``, or a padded ``(B, T, F)`` array.
            mask: ``(B, T)`` bool, True = real step (padded ``x`` only).
            lengths: ``(B,)`` integer lengths (padded ``x`` only).
            padding: Side holding the padding when ``lengths`` is given.

        Returns:
            A new object like ``x`` (Ragged with the same offsets, or ``(B, T, F)``) with
            ``x``'s floating dtype, or float64 for integer ``x``.

        Raises:
            TypeError: As :meth:`fit`.
            ValueError: As :meth:`fit` (infinities excepted), or if ``x`` does not have
                ``F`` features.
        """
        with error_context("Standardizer.transform"):
            return self._apply(x, mask, lengths, padding, inverse=False)

    def inverse_transform(
        self,
        x: _X,
        *,
        mask: BoolArray | None = None,
        lengths: Any = None,
        padding: Padding = "post",
    ) -> _X:
        """Undo :meth:`transform` on the real steps of ``x``: ``x * scale + mean``.

        Same layouts, pad handling and dtype rules as :meth:`transform`.

        Args:
            x: A Ragged with values ``(N, F)``, or a padded ``(B, T, F)`` array.
            mask: ``(B, T)`` bool, True = real step (padded ``x`` only).
            lengths: ``(B,)`` integer lengths (padded ``x`` only).
            padding: Side holding the padding when ``lengths`` is given.

        Returns:
            A new object like ``x``.

        Raises:
            TypeError: As :meth:`transform`.
            ValueError: As :meth:`transform`.
        """
        with error_context("Standardizer.inverse_transform"):
            return self._apply(x, mask, lengths, padding, inverse=True)

    @classmethod
    def fit_transform(
        cls,
        x: _X,
        *,
        mask: BoolArray | None = None,
        lengths: Any = None,
        padding: Padding = "post",
        eps: float = _DEFAULT_EPS,
    ) -> tuple[Standardizer, _X]:
        """Fit on ``x`` and standardize it.

        Args:
            x: A Ragged with values ``(N, F)``, or a padded ``(B, T, F)`` array.
            mask: ``(B, T)`` bool, True = real step (padded ``x`` only).
            lengths: ``(B,)`` integer lengths (padded ``x`` only).
            padding: Side holding the padding when ``lengths`` is given.
            eps: Relative tolerance for constant features.

        Returns:
            ``(standardizer, transformed)``, as :meth:`fit` and :meth:`transform`.

        Raises:
            TypeError: As :meth:`fit`.
            ValueError: As :meth:`fit`.
        """
        scaler = cls.fit(x, mask=mask, lengths=lengths, padding=padding, eps=eps)
        return scaler, scaler.transform(x, mask=mask, lengths=lengths, padding=padding)

    # ------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """Return the state as plain Python floats and lists, ready for ``json.dump``.

        Returns:
            ``{"version": 1, "mean": [...], "std": [...], "count": [...], "eps": float}``.
        """
        return {
            "version": _STATE_VERSION,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": self.count.tolist(),
            "eps": self.eps,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Standardizer:
        """Rebuild a standardizer from :meth:`state_dict` output (for example after JSON).

        Args:
            state: A mapping with the keys written by :meth:`state_dict`.

        Returns:
            A :class:`Standardizer` equal to the saved one.

        Raises:
            TypeError: If ``state`` is not a mapping.
            ValueError: If keys are missing or unknown, the version is unsupported, or the
                values break the constructor's rules.
        """
        where = "Standardizer.from_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{where}: state must be a mapping, got {type(state).__name__}.")
        expected = {"version", "mean", "std", "count", "eps"}
        if set(state) != expected:
            raise ValueError(
                f"{where}: state must have keys {sorted(expected)}, got {sorted(state)}."
            )
        if state["version"] != _STATE_VERSION:
            raise ValueError(
                f"{where}: state['version'] must be {_STATE_VERSION}, got {state['version']!r}."
            )
        return cls(
            np.asarray(state["mean"], dtype=np.float64),
            np.asarray(state["std"], dtype=np.float64),
            np.asarray(state["count"], dtype=np.float64),
            state["eps"],
        )

    def __repr__(self) -> str:
        return f"Standardizer(F={self.num_features}, eps={self.eps!r})"
