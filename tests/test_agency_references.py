"""A batch names only a campaign and an agent mapping of its own agency, and its summary never
shows another agency's names, even over data written past the constraints."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest

from tests.database import Seeder, as_authenticated


def summary(conn: psycopg.Connection[Any], batch_id: UUID) -> tuple[Any, ...] | None:
    return conn.execute(
        "select campaign_name, agent_name from public.v_call_batch_summary where id = %s",
        (batch_id,),
    ).fetchone()


@pytest.mark.parametrize("column", ["campaign_id", "agent_mapping_id"])
def test_a_batch_cannot_name_another_agencys_campaign_or_agent(db: Seeder, column: str) -> None:
    mine, theirs = db.agency(), db.agency()
    foreign = db.campaign(theirs) if column == "campaign_id" else db.agent_mapping(theirs)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.batch(mine, **{column: foreign})
    batch_id = db.batch(mine)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.conn.execute(
            f"update public.call_batches set {column} = %s where id = %s",
            (foreign, batch_id),
        )
    # Its own agency's is fine.
    own = db.campaign(mine) if column == "campaign_id" else db.agent_mapping(mine)
    db.conn.execute(
        f"update public.call_batches set {column} = %s where id = %s",
        (own, batch_id),
    )


def test_deleting_a_campaign_clears_only_the_batchs_reference(db: Seeder) -> None:
    agency_id = db.agency()
    campaign, agent = db.campaign(agency_id), db.agent_mapping(agency_id)
    batch_id = db.batch(agency_id, campaign_id=campaign, agent_mapping_id=agent)
    db.conn.execute("delete from public.campaigns where id = %s", (campaign,))
    db.conn.execute("delete from public.agent_mappings where id = %s", (agent,))
    row = db.conn.execute(
        "select agency_id, campaign_id, agent_mapping_id from public.call_batches where id = %s",
        (batch_id,),
    ).fetchone()
    assert row == (agency_id, None, None)


def test_the_summary_never_shows_another_agencys_names(db: Seeder) -> None:
    mine, me = db.agency_with_user()
    theirs = db.agency()
    campaign = db.campaign(theirs, name="Their Secret Campaign")
    agent = db.agent_mapping(theirs, name="Their Secret Agent")
    batch_id = db.batch(mine)
    # Written past the constraints (a restore with triggers off, a replica, a bug elsewhere).
    with db.conn.transaction():
        db.conn.execute("set local session_replication_role = replica")
        db.conn.execute(
            "update public.call_batches set campaign_id = %s, agent_mapping_id = %s"
            " where id = %s",
            (campaign, agent, batch_id),
        )
    assert summary(db.conn, batch_id) == (None, None)
    with as_authenticated(db.conn, me) as conn:
        assert summary(conn, batch_id) == (None, None)
