"""Record, read and forget attachments; their bytes are blobs, kept once by SHA-256.

Order of writes, so that nothing recorded is ever without its bytes:

- receiving: the blob is written *before* the row, inside the transaction that
  records the message, so a committed row always has its blob. A transaction that
  rolls back leaves at most a blob nobody names, and a replay of the message puts
  the same bytes under the same key again (a no-op);
- forgetting: the rows go in the caller's transaction, which notes their keys on
  the session; only after it commits does ``release_blobs`` delete each blob that no
  row names any more (``released_keys`` hands the noted keys over).

Both sides hold a lock on the blob's key while they decide (an advisory lock on
PostgreSQL; SQLite serializes every writer anyway), so a blob is never deleted
while a row that names it is being written. Blobs left behind by a crash between
a commit and its release, or by a rolled-back receive, are removed by
``sweep_blobs`` (``crm attachments sweep``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from crm_core.activities.models import Activity
from crm_core.attachments.models import StoredAttachment
from crm_core.base.locks import lock_identities
from crm_core.blobs import BlobStore
from crm_core.mail.parsed import Attachment

_RELEASED = "crm.attachments.released"


def blob_lock(key: str) -> str:
    """The identity locked while a blob's fate is decided."""
    return f"blob:{key}"


def record_attachments(
    session: Session, *, activity: Activity, attachments: Sequence[Attachment], store: BlobStore
) -> list[StoredAttachment]:
    """Keep each attachment's bytes and record it against ``activity`` (flushed, so it has
    an id). Call it once per new Activity: a replayed message is a duplicate before this."""
    if not attachments:
        return []
    lock_identities(session, (blob_lock(a.sha256) for a in attachments))
    rows = []
    for attachment in attachments:
        key = store.put(attachment.content)
        if key != attachment.sha256:  # the parser's digest and the store's must agree
            raise ValueError(f"attachment digest {attachment.sha256} is not its content's {key}")
        rows.append(
            StoredAttachment(
                activity_id=activity.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                sha256=key,
                inline=attachment.inline,
            )
        )
    session.add_all(rows)
    session.flush()
    return rows


def get_attachment(session: Session, *, attachment_id: int) -> StoredAttachment | None:
    """One attachment's record, or None."""
    return session.get(StoredAttachment, attachment_id)


def attachment_dict(row: StoredAttachment) -> dict[str, Any]:
    """An attachment as the API lists it, with the link that downloads it."""
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "inline": row.inline,
        "href": f"/api/attachments/{row.id}",
    }


def attachments_of(
    session: Session, activity_ids: Iterable[int]
) -> dict[int, list[dict[str, Any]]]:
    """The attachments of each of ``activity_ids`` (as ``attachment_dict``), in the message's
    order; an activity without any is absent."""
    ids = sorted(set(activity_ids))
    found: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return found
    query = (
        select(StoredAttachment)
        .where(StoredAttachment.activity_id.in_(ids))
        .order_by(StoredAttachment.activity_id, StoredAttachment.id)
    )
    for row in session.scalars(query):
        found.setdefault(row.activity_id, []).append(attachment_dict(row))
    return found


def forget_activity_attachments(session: Session, *, activity_ids: Iterable[int]) -> int:
    """Delete the attachment rows of these activities; how many. Their blobs are released
    after the commit (``released_keys`` / ``release_blobs``)."""
    ids = sorted(set(activity_ids))
    if not ids:
        return 0
    return _forget(session, StoredAttachment.activity_id.in_(ids))


def forget_customer_attachments(session: Session, *, customer_id: int) -> int:
    """Delete the attachment rows of every activity on ``customer_id``'s timeline; how many.
    Called before the customer is deleted (its activities go with it)."""
    on_timeline = select(Activity.id).where(Activity.customer_id == customer_id)
    return _forget(session, StoredAttachment.activity_id.in_(on_timeline))


def erase_contact_attachments(session: Session, *, contact_id: int) -> int:
    """Erase every attachment a contact sent or received: the files of every activity that
    concerns the contact (``Activity.contact_id``). Returns how many were erased.

    For personal-data erasure and for deleting a contact. It runs in the caller's
    transaction and does not commit. The rows are deleted at once; the bytes are not
    touched until the transaction has committed, because a rollback must leave every
    row with its blob. After the commit, the caller hands the keys over::

        with sessions.begin() as session:
            erase_contact_attachments(session, contact_id=contact_id)
            keys = released_keys(session)
        release_blobs(sessions, store, keys)

    ``release_blobs`` deletes each blob no other row still names (the same file may have
    come from someone else too). Should the process die between the commit and the
    release, ``sweep_blobs`` removes what is left. A merged contact's attachments are not
    erased by erasing the merged id: they moved to the survivor with its activities.
    """
    of_contact = select(Activity.id).where(Activity.contact_id == contact_id)
    return _forget(session, StoredAttachment.activity_id.in_(of_contact))


def _forget(session: Session, where: ColumnElement[bool]) -> int:
    rows = session.execute(select(StoredAttachment.id, StoredAttachment.sha256).where(where)).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    session.execute(
        delete(StoredAttachment)
        .where(StoredAttachment.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    session.info.setdefault(_RELEASED, set()).update(row.sha256 for row in rows)
    return len(ids)


def released_keys(session: Session) -> set[str]:
    """The blob keys whose rows this session deleted (taken: asked again, it answers none).

    Read them after the commit and pass them to ``release_blobs``. Handing over keys of a
    transaction that rolled back is harmless: their rows are still there, so the blobs stay.
    """
    keys: set[str] = session.info.pop(_RELEASED, set())
    return keys


def release_blobs(
    sessions: sessionmaker[Session], store: BlobStore, keys: Iterable[str]
) -> list[str]:
    """Delete each blob of ``keys`` that no attachment row names; the keys deleted.

    Each key is decided in a short transaction of its own, under the blob's lock, so a
    message being received with the same file either finished first (its row keeps the
    blob) or writes the blob again after this (it puts before it records).
    """
    deleted = []
    for key in sorted(set(keys)):
        with sessions.begin() as session:
            lock_identities(session, [blob_lock(key)])
            named = session.scalar(select(exists().where(StoredAttachment.sha256 == key)))
            if named:
                continue
            store.delete(key)
        deleted.append(key)
    return deleted


def sweep_blobs(sessions: sessionmaker[Session], store: BlobStore) -> list[str]:
    """Delete every blob in ``store`` that no attachment row names; the keys deleted.

    Safe while mail is being received: a blob just written for a row not yet committed
    is under its lock, and is decided only after that transaction ends.
    """
    return release_blobs(sessions, store, list(store.keys()))
