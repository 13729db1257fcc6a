"""Every mapped class, imported in one place so the metadata is complete.

Alembic, the ERD generator and the tests import this module.
"""

from crm_core.activities.models import Activity, ActivityType, Direction, MessageReference
from crm_core.attachments.models import StoredAttachment
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.bounces.models import (
    AppliedDeliveryReport,
    MailBounce,
    SentKind,
    SentMessage,
    Suppression,
    SuppressionReason,
)
from crm_core.campaigns.models import (
    CampaignMember,
    CampaignSend,
    CampaignStatus,
    MarketingCampaign,
    MemberStatus,
    SendStatus,
)
from crm_core.customers.models import Contact, Customer, CustomerKind, LifecycleStage
from crm_core.db import Base
from crm_core.followups.models import FollowUpStatus, FollowUpTask, SubjectType
from crm_core.idempotency.models import IdempotencyKey, KeyState
from crm_core.ingestion.models import EventEntity, EventStatus, InboxEvent, Source, SourceSecret
from crm_core.mailboxes.models import Mailbox, MailboxSecurity
from crm_core.notifications.models import (
    DeliveryAttempt,
    DeliveryStatus,
    NotificationDelivery,
    Subscription,
)
from crm_core.ops.models import EventRateBucket, RollupWatermark, WorkerHeartbeat
from crm_core.payloads.kinds import EventKind
from crm_core.people.models import ApiKey, AuditEntry, User
from crm_core.sales.models import (
    Agreement,
    AgreementStatus,
    Opportunity,
    OpportunityStage,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductKind,
    agreement_opportunities,
)
from crm_core.support.models import CaseChannel, CasePriority, CaseStatus, SupportCase

metadata = Base.metadata

__all__ = [
    "Activity",
    "ActivityType",
    "Agreement",
    "AgreementStatus",
    "ApiKey",
    "AppliedDeliveryReport",
    "AuditEntry",
    "Base",
    "CampaignMember",
    "CampaignSend",
    "CampaignStatus",
    "CaseChannel",
    "CasePriority",
    "CaseStatus",
    "Contact",
    "Customer",
    "CustomerKind",
    "DeliveryAttempt",
    "DeliveryStatus",
    "Direction",
    "EntityType",
    "EventEntity",
    "EventKind",
    "EventRateBucket",
    "EventStatus",
    "ExternalRef",
    "FollowUpStatus",
    "FollowUpTask",
    "IdempotencyKey",
    "InboxEvent",
    "KeyState",
    "LifecycleStage",
    "MailBounce",
    "Mailbox",
    "MailboxSecurity",
    "MarketingCampaign",
    "MemberStatus",
    "MessageReference",
    "NotificationDelivery",
    "Opportunity",
    "OpportunityStage",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Product",
    "ProductKind",
    "RollupWatermark",
    "SendStatus",
    "SentKind",
    "SentMessage",
    "Source",
    "SourceSecret",
    "StoredAttachment",
    "SubjectType",
    "Subscription",
    "SupportCase",
    "Suppression",
    "SuppressionReason",
    "User",
    "WorkerHeartbeat",
    "agreement_opportunities",
    "metadata",
]
