"""Which stored instances searches and reads may see: none that an IHE IOCM rejection note rejected.

Why conditions built here, once: every read of the index (QIDO-RS at three levels and its counts,
WADO-RS metadata, instances, frames, rendered images) applies the same rule, and a new query must not
forget it. An instance is filtered by its own row's `rejected` flag, at no cost. A series or study is
shown when it has an instance left to show; that check is a correlated probe per row, so it is guarded
by "is any stored instance rejected at all?", which the database evaluates once per statement from a
partial index holding only the rejected rows: an archive without rejections pays one index probe.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import aliased

from app.store.index import Instance, Series

# The condition of the partial index `ix_instance_rejected` (app/store/index.py), written the same way
# so that the planners of both databases see the index answers it.
REJECTED: ColumnElement[bool] = Instance.rejected == true()
VISIBLE: ColumnElement[bool] = Instance.rejected == false()


def _none_rejected() -> ColumnElement[bool]:
    """True when no stored instance is rejected: uncorrelated, so evaluated once per statement."""
    rejected = aliased(Instance, name="any_rejected")
    return ~exists(select(rejected.pk).where(rejected.rejected == true()).correlate(None))


def series_visible(series_pk: Any) -> ColumnElement[bool]:
    """The series `series_pk` (a column of the enclosing query) has an instance not rejected."""
    shown = aliased(Instance, name="shown_in_series")
    return or_(
        _none_rejected(),
        exists(select(shown.pk).where(shown.series_pk == series_pk, shown.rejected == false())),
    )


def study_visible(study_pk: Any) -> ColumnElement[bool]:
    """The study `study_pk` (a column of the enclosing query) has an instance not rejected."""
    shown = aliased(Instance, name="shown_in_study")
    series = aliased(Series, name="series_of_shown")
    return or_(
        _none_rejected(),
        exists(
            select(shown.pk)
            .join(series, series.pk == shown.series_pk)
            .where(series.study_pk == study_pk, shown.rejected == false())
        ),
    )


def instance_visible(include_rejected: bool) -> ColumnElement[bool]:
    """The condition on the Instance rows of a query: every row when `include_rejected`."""
    return and_(true()) if include_rejected else VISIBLE
