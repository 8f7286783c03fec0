"""Which stored instances searches and reads may see: none that an IHE IOCM rejection note rejected.

Why conditions built here, once: every read of the index (QIDO-RS at three levels and its counts,
WADO-RS metadata, instances, frames, rendered images) applies the same rule, and a new query must not
forget it. An instance is filtered by its own row's `rejected` flag, at no cost. A series or study is
shown when it has an instance left to show; that check is a correlated probe per row, so it is guarded
by "is any stored instance rejected at all?", which the database evaluates once per statement from a
partial index holding only the rejected rows: an archive without rejections pays one index probe.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import ColumnElement, Table, exists, false, or_, select, true

from app.store.tables import Instance, Series, Study

# The condition of the partial index `ix_instance_rejected` (app/store/tables.py), written the same way
# so that the planners of both databases see the index answers it.
REJECTED: ColumnElement[bool] = Instance.rejected == true()
VISIBLE: ColumnElement[bool] = Instance.rejected == false()

# Built once, from Core aliases: building ORM aliases per search cost milliseconds of Python.
_instance, _series = cast(Table, Instance.__table__), cast(Table, Series.__table__)
_any_rejected = _instance.alias("any_rejected")
_in_series = _instance.alias("shown_in_series")
_in_study, _series_of_study = _instance.alias("shown_in_study"), _series.alias("series_of_shown")

# True when some stored instance is rejected: uncorrelated, so evaluated once per statement. Also
# returned as a column of a search's main statement, so that what follows it skips the visibility
# work, without a round trip of its own, when there is nothing to hide.
ANY_REJECTED: ColumnElement[bool] = exists(
    select(_any_rejected.c.pk).where(_any_rejected.c.rejected == true()).correlate(None)
)
_NONE_REJECTED = ~ANY_REJECTED

# The enclosing query's series (study) has an instance not rejected. A scalar subquery with LIMIT 1,
# not EXISTS: PostgreSQL turns an EXISTS under OR into a hashed subplan over every instance of the
# archive; this stays one index probe per candidate row.
SERIES_VISIBLE: ColumnElement[bool] = or_(
    _NONE_REJECTED,
    select(_in_series.c.pk)
    .where(_in_series.c.series_pk == Series.pk, _in_series.c.rejected == false())
    .limit(1)
    .scalar_subquery()
    .is_not(None),
)
STUDY_VISIBLE: ColumnElement[bool] = or_(
    _NONE_REJECTED,
    select(_in_study.c.pk)
    .join(_series_of_study, _series_of_study.c.pk == _in_study.c.series_pk)
    .where(_series_of_study.c.study_pk == Study.pk, _in_study.c.rejected == false())
    .limit(1)
    .scalar_subquery()
    .is_not(None),
)
