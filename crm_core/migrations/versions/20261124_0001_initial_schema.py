"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 18:50:44.347515
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


import crm_core.db

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
   
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('prefix', sa.String(length=40), nullable=False),
    sa.Column('key_hash', sa.Text(), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    sa.UniqueConstraint('name', name=op.f('uq_api_keys_name'))
    )
    op.create_table('customers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('name_key', sa.String(length=255), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=True),
    sa.Column('lifecycle_stage', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('website', sa.String(length=255), nullable=True),
    sa.Column('industry', sa.String(length=80), nullable=True),
    sa.Column('address_line1', sa.String(length=255), nullable=True),
    sa.Column('address_line2', sa.String(length=255), nullable=True),
    sa.Column('city', sa.String(length=80), nullable=True),
    sa.Column('region', sa.String(length=80), nullable=True),
    sa.Column('postal_code', sa.String(length=40), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("kind IN ('person', 'company')", name=op.f('ck_customers_kind_allowed')),
    sa.CheckConstraint("lifecycle_stage IN ('lead', 'prospect', 'customer', 'churned')", name=op.f('ck_customers_lifecycle_stage_allowed')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('domain', name=op.f('uq_customers_domain'))
    )
    op.create_index('ix_customers_lifecycle_stage', 'customers', ['lifecycle_stage'], unique=False)
    op.create_index('ix_customers_name_key', 'customers', ['name_key'], unique=False)
    op.create_table('marketing_campaigns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('text_template', sa.Text(), nullable=True),
    sa.Column('html_template', sa.Text(), nullable=True),
    sa.Column('segment', sa.JSON(), nullable=False),
    sa.Column('send_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('schedule_cron', sa.String(length=80), nullable=True),
    sa.Column('started_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'sent', 'paused', 'cancelled')", name=op.f('ck_marketing_campaigns_status_allowed')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marketing_campaigns')),
    sa.UniqueConstraint('code', name=op.f('uq_marketing_campaigns_code'))
    )
    op.create_index('ix_marketing_campaigns_status_send_at', 'marketing_campaigns', ['status', 'send_at'], unique=False)
    op.create_table('products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sku', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('stock_quantity', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("kind IN ('product', 'service')", name=op.f('ck_products_kind_allowed')),
    sa.CheckConstraint('stock_quantity IS NULL OR stock_quantity >= 0', name=op.f('ck_products_stock_not_negative')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_products_unit_price_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('sku', name=op.f('uq_products_sku'))
    )
    op.create_table('sources',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('rate_limit_per_minute', sa.Integer(), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sources')),
    sa.UniqueConstraint('name', name=op.f('uq_sources_name'))
    )
    op.create_table('worker_heartbeats',
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('last_seen_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('beats', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hostname', name=op.f('pk_worker_heartbeats'))
    )
    op.create_table('campaign_members',
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('added_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('responded_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('targeted', 'responded', 'converted')", name=op.f('ck_campaign_members_status_allowed')),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_campaign_members_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_campaign_members_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'customer_id', name=op.f('pk_campaign_members'))
    )
    op.create_index(op.f('ix_campaign_members_customer_id'), 'campaign_members', ['customer_id'], unique=False)
    op.create_table('contacts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('is_primary', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('first_name', sa.String(length=80), nullable=True),
    sa.Column('last_name', sa.String(length=80), nullable=True),
    sa.Column('full_name', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('email_normalized', sa.String(length=255), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('phone_raw', sa.String(length=80), nullable=True),
    sa.Column('phone_valid', sa.Boolean(), nullable=True),
    sa.Column('job_title', sa.String(length=255), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('last_activity_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_contacts_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('email_normalized', name=op.f('uq_contacts_email_normalized'))
    )
    op.create_index(op.f('ix_contacts_customer_id'), 'contacts', ['customer_id'], unique=False)
    op.create_index('ix_contacts_last_activity_at', 'contacts', ['last_activity_at'], unique=False)
    op.create_index('ix_contacts_phone', 'contacts', ['phone'], unique=False)
    op.create_index('uq_contacts_primary_per_customer', 'contacts', ['customer_id'], unique=True, postgresql_where=sa.text('is_primary'), sqlite_where=sa.text('is_primary'))
    op.create_table('external_refs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entity_type', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('entity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("entity_type IN ('customer', 'contact', 'opportunity', 'agreement', 'order', 'product', 'activity', 'support_case', 'campaign')", name=op.f('ck_external_refs_entity_type_allowed')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_external_refs_source_id_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_external_refs')),
    sa.UniqueConstraint('source_id', 'entity_type', 'external_id', name=op.f('uq_external_refs_source_id_entity_type_external_id'))
    )
    op.create_index('ix_external_refs_entity_type_entity_id', 'external_refs', ['entity_type', 'entity_id'], unique=False)
    op.create_table('inbox_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('webhook_id', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=True),
    sa.Column('received_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('processed_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('leads', 'emails', 'tickets', 'orders', 'deals')", name=op.f('ck_inbox_events_kind_allowed')),
    sa.CheckConstraint("status IN ('received', 'processing', 'processed', 'invalid', 'failed', 'dead')", name=op.f('ck_inbox_events_status_allowed')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_inbox_events_source_id_sources'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_events')),
    sa.UniqueConstraint('source_id', 'webhook_id', name=op.f('uq_inbox_events_source_id_webhook_id'))
    )
    op.create_index('ix_inbox_events_status_next_attempt_at', 'inbox_events', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_inbox_events_status_received_at', 'inbox_events', ['status', 'received_at'], unique=False)
    op.create_table('source_secrets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_source_secrets_source_id_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_secrets'))
    )
    op.create_index(op.f('ix_source_secrets_source_id'), 'source_secrets', ['source_id'], unique=False)
    op.create_table('suppressions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email_normalized', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("reason IN ('unsubscribed', 'bounced', 'complained', 'manual')", name=op.f('ck_suppressions_reason_allowed')),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_suppressions_campaign_id_marketing_campaigns'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('email_normalized', name=op.f('uq_suppressions_email_normalized'))
    )
    op.create_table('campaign_sends',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('provider_message_id', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sending_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'unknown')", name=op.f('ck_campaign_sends_status_allowed')),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_campaign_sends_campaign_id_marketing_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_campaign_sends_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_sends')),
    sa.UniqueConstraint('campaign_id', 'contact_id', name=op.f('uq_campaign_sends_campaign_id_contact_id'))
    )
    op.create_index('ix_campaign_sends_campaign_id_status', 'campaign_sends', ['campaign_id', 'status'], unique=False)
    op.create_index(op.f('ix_campaign_sends_contact_id'), 'campaign_sends', ['contact_id'], unique=False)
    op.create_table('event_entities',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entity_type', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.CheckConstraint("entity_type IN ('customer', 'contact', 'opportunity', 'agreement', 'order', 'product', 'activity', 'support_case', 'campaign')", name=op.f('ck_event_entities_entity_type_allowed')),
    sa.ForeignKeyConstraint(['event_id'], ['inbox_events.id'], name=op.f('fk_event_entities_event_id_inbox_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'entity_type', 'entity_id', name=op.f('pk_event_entities'))
    )
    op.create_index('ix_event_entities_entity_type_entity_id', 'event_entities', ['entity_type', 'entity_id'], unique=False)
    op.create_table('opportunities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('expected_close_date', sa.Date(), nullable=True),
    sa.Column('closed_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("stage IN ('new', 'qualified', 'proposal', 'won', 'lost')", name=op.f('ck_opportunities_stage_allowed')),
    sa.CheckConstraint('amount IS NULL OR amount >= 0', name=op.f('ck_opportunities_amount_not_negative')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_opportunities_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_opportunities_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_opportunities_source_id_sources'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunities')),
    sa.UniqueConstraint('source_id', 'external_id', name=op.f('uq_opportunities_source_id_external_id'))
    )
    op.create_index(op.f('ix_opportunities_contact_id'), 'opportunities', ['contact_id'], unique=False)
    op.create_index(op.f('ix_opportunities_customer_id'), 'opportunities', ['customer_id'], unique=False)
    op.create_index('ix_opportunities_expected_close_date', 'opportunities', ['expected_close_date'], unique=False)
    op.create_index('ix_opportunities_stage_updated_at', 'opportunities', ['stage', 'updated_at'], unique=False)
    op.create_table('orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('order_number', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('ordered_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("status IN ('placed', 'paid', 'fulfilled', 'cancelled', 'refunded')", name=op.f('ck_orders_status_allowed')),
    sa.CheckConstraint('total >= 0', name=op.f('ck_orders_total_not_negative')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_orders_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_orders_customer_id_customers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_orders_source_id_sources'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('source_id', 'order_number', name=op.f('uq_orders_source_id_order_number'))
    )
    op.create_index(op.f('ix_orders_contact_id'), 'orders', ['contact_id'], unique=False)
    op.create_index(op.f('ix_orders_customer_id'), 'orders', ['customer_id'], unique=False)
    op.create_index('ix_orders_ordered_at', 'orders', ['ordered_at'], unique=False)
    op.create_table('support_cases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('external_id', sa.String(length=255), nullable=True),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('root_message_id', sa.Text(), nullable=True),
    sa.Column('first_response_due_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_responded_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_due_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('assignee', sa.String(length=255), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("channel IN ('email', 'webhook', 'api')", name=op.f('ck_support_cases_channel_allowed')),
    sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name=op.f('ck_support_cases_priority_allowed')),
    sa.CheckConstraint("status IN ('new', 'open', 'pending', 'resolved', 'closed')", name=op.f('ck_support_cases_status_allowed')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_support_cases_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_support_cases_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_support_cases_source_id_sources'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_cases')),
    sa.UniqueConstraint('source_id', 'external_id', name=op.f('uq_support_cases_source_id_external_id'))
    )
    op.create_index(op.f('ix_support_cases_contact_id'), 'support_cases', ['contact_id'], unique=False)
    op.create_index(op.f('ix_support_cases_customer_id'), 'support_cases', ['customer_id'], unique=False)
    op.create_index(op.f('ix_support_cases_root_message_id'), 'support_cases', ['root_message_id'], unique=False)
    op.create_index('ix_support_cases_status_first_response_due_at', 'support_cases', ['status', 'first_response_due_at'], unique=False)
    op.create_table('agreements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('origin_opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('terms', sa.Text(), nullable=True),
    sa.Column('signed_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('terminates_on', sa.Date(), nullable=True),
    sa.Column('applies_to_segment', sa.JSON(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'active', 'terminated', 'expired')", name=op.f('ck_agreements_status_allowed')),
    sa.CheckConstraint('terminates_on IS NULL OR terminates_on >= effective_on', name=op.f('ck_agreements_valid_period')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_agreements_customer_id_customers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['origin_opportunity_id'], ['opportunities.id'], name=op.f('fk_agreements_origin_opportunity_id_opportunities'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreements')),
    sa.UniqueConstraint('number', name=op.f('uq_agreements_number')),
    sa.UniqueConstraint('origin_opportunity_id', name=op.f('uq_agreements_origin_opportunity_id'))
    )
    op.create_index(op.f('ix_agreements_customer_id'), 'agreements', ['customer_id'], unique=False)
    op.create_index('ix_agreements_terminates_on', 'agreements', ['terminates_on'], unique=False)
    op.create_table('followup_tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule', sa.String(length=80), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('support_case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=40), nullable=False),
    sa.Column('due_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'done', 'cancelled')", name=op.f('ck_followup_tasks_status_allowed')),
    sa.CheckConstraint("subject_type IN ('contact', 'support_case', 'opportunity')", name=op.f('ck_followup_tasks_subject_type_allowed')),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_followup_tasks_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_followup_tasks_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_followup_tasks_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['support_case_id'], ['support_cases.id'], name=op.f('fk_followup_tasks_support_case_id_support_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followup_tasks')),
    sa.UniqueConstraint('rule', 'subject_type', 'subject_id', name=op.f('uq_followup_tasks_rule_subject_type_subject_id'))
    )
    op.create_index(op.f('ix_followup_tasks_contact_id'), 'followup_tasks', ['contact_id'], unique=False)
    op.create_index(op.f('ix_followup_tasks_customer_id'), 'followup_tasks', ['customer_id'], unique=False)
    op.create_index(op.f('ix_followup_tasks_opportunity_id'), 'followup_tasks', ['opportunity_id'], unique=False)
    op.create_index('ix_followup_tasks_status_due_at', 'followup_tasks', ['status', 'due_at'], unique=False)
    op.create_index(op.f('ix_followup_tasks_support_case_id'), 'followup_tasks', ['support_case_id'], unique=False)
    op.create_table('order_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('line_total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_order_lines_quantity_positive')),
    sa.CheckConstraint('unit_price >= 0', name=op.f('ck_order_lines_unit_price_not_negative')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_lines_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_order_lines_product_id_products'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_lines')),
    sa.UniqueConstraint('order_id', 'line_no', name=op.f('uq_order_lines_order_id_line_no'))
    )
    op.create_index(op.f('ix_order_lines_product_id'), 'order_lines', ['product_id'], unique=False)
    op.create_table('activities',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('direction', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('support_case_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('campaign_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("direction IN ('inbound', 'outbound', 'internal')", name=op.f('ck_activities_direction_allowed')),
    sa.CheckConstraint("type IN ('lead_captured', 'email_received', 'email_sent', 'call', 'meeting', 'note', 'case_opened', 'case_status_changed', 'case_comment', 'case_escalated', 'order_placed', 'deal_stage_changed', 'agreement_signed', 'campaign_sent', 'unsubscribed', 'followup_due')", name=op.f('ck_activities_type_allowed')),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_activities_agreement_id_agreements'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['campaign_id'], ['marketing_campaigns.id'], name=op.f('fk_activities_campaign_id_marketing_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_activities_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_activities_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['inbox_events.id'], name=op.f('fk_activities_event_id_inbox_events'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_activities_opportunity_id_opportunities'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_activities_order_id_orders'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['support_case_id'], ['support_cases.id'], name=op.f('fk_activities_support_case_id_support_cases'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities')),
    sa.UniqueConstraint('message_id', name=op.f('uq_activities_message_id'))
    )
    op.create_index('ix_activities_agreement_id', 'activities', ['agreement_id'], unique=False)
    op.create_index('ix_activities_campaign_id', 'activities', ['campaign_id'], unique=False)
    op.create_index('ix_activities_contact_id_occurred_at', 'activities', ['contact_id', 'occurred_at'], unique=False)
    op.create_index('ix_activities_customer_id_occurred_at', 'activities', ['customer_id', 'occurred_at'], unique=False)
    op.create_index('ix_activities_event_id', 'activities', ['event_id'], unique=False)
    op.create_index('ix_activities_opportunity_id', 'activities', ['opportunity_id'], unique=False)
    op.create_index('ix_activities_order_id', 'activities', ['order_id'], unique=False)
    op.create_index('ix_activities_support_case_id_occurred_at', 'activities', ['support_case_id', 'occurred_at'], unique=False)
    op.create_table('agreement_opportunities',
    sa.Column('agreement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('opportunity_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['agreements.id'], name=op.f('fk_agreement_opportunities_agreement_id_agreements'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opportunity_id'], ['opportunities.id'], name=op.f('fk_agreement_opportunities_opportunity_id_opportunities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agreement_id', 'opportunity_id', name=op.f('pk_agreement_opportunities'))
    )
    op.create_index(op.f('ix_agreement_opportunities_opportunity_id'), 'agreement_opportunities', ['opportunity_id'], unique=False)



def downgrade() -> None:
   
    op.drop_index(op.f('ix_agreement_opportunities_opportunity_id'), table_name='agreement_opportunities')
    op.drop_table('agreement_opportunities')
    op.drop_index('ix_activities_support_case_id_occurred_at', table_name='activities')
    op.drop_index('ix_activities_order_id', table_name='activities')
    op.drop_index('ix_activities_opportunity_id', table_name='activities')
    op.drop_index('ix_activities_event_id', table_name='activities')
    op.drop_index('ix_activities_customer_id_occurred_at', table_name='activities')
    op.drop_index('ix_activities_contact_id_occurred_at', table_name='activities')
    op.drop_index('ix_activities_campaign_id', table_name='activities')
    op.drop_index('ix_activities_agreement_id', table_name='activities')
    op.drop_table('activities')
    op.drop_index(op.f('ix_order_lines_product_id'), table_name='order_lines')
    op.drop_table('order_lines')
    op.drop_index(op.f('ix_followup_tasks_support_case_id'), table_name='followup_tasks')
    op.drop_index('ix_followup_tasks_status_due_at', table_name='followup_tasks')
    op.drop_index(op.f('ix_followup_tasks_opportunity_id'), table_name='followup_tasks')
    op.drop_index(op.f('ix_followup_tasks_customer_id'), table_name='followup_tasks')
    op.drop_index(op.f('ix_followup_tasks_contact_id'), table_name='followup_tasks')
    op.drop_table('followup_tasks')
    op.drop_index('ix_agreements_terminates_on', table_name='agreements')
    op.drop_index(op.f('ix_agreements_customer_id'), table_name='agreements')
    op.drop_table('agreements')
    op.drop_index('ix_support_cases_status_first_response_due_at', table_name='support_cases')
    op.drop_index(op.f('ix_support_cases_root_message_id'), table_name='support_cases')
    op.drop_index(op.f('ix_support_cases_customer_id'), table_name='support_cases')
    op.drop_index(op.f('ix_support_cases_contact_id'), table_name='support_cases')
    op.drop_table('support_cases')
    op.drop_index('ix_orders_ordered_at', table_name='orders')
    op.drop_index(op.f('ix_orders_customer_id'), table_name='orders')
    op.drop_index(op.f('ix_orders_contact_id'), table_name='orders')
    op.drop_table('orders')
    op.drop_index('ix_opportunities_stage_updated_at', table_name='opportunities')
    op.drop_index('ix_opportunities_expected_close_date', table_name='opportunities')
    op.drop_index(op.f('ix_opportunities_customer_id'), table_name='opportunities')
    op.drop_index(op.f('ix_opportunities_contact_id'), table_name='opportunities')
    op.drop_table('opportunities')
    op.drop_index('ix_event_entities_entity_type_entity_id', table_name='event_entities')
    op.drop_table('event_entities')
    op.drop_index(op.f('ix_campaign_sends_contact_id'), table_name='campaign_sends')
    op.drop_index('ix_campaign_sends_campaign_id_status', table_name='campaign_sends')
    op.drop_table('campaign_sends')
    op.drop_table('suppressions')
    op.drop_index(op.f('ix_source_secrets_source_id'), table_name='source_secrets')
    op.drop_table('source_secrets')
    op.drop_index('ix_inbox_events_status_received_at', table_name='inbox_events')
    op.drop_index('ix_inbox_events_status_next_attempt_at', table_name='inbox_events')
    op.drop_table('inbox_events')
    op.drop_index('ix_external_refs_entity_type_entity_id', table_name='external_refs')
    op.drop_table('external_refs')
    op.drop_index('uq_contacts_primary_per_customer', table_name='contacts', postgresql_where=sa.text('is_primary'), sqlite_where=sa.text('is_primary'))
    op.drop_index('ix_contacts_phone', table_name='contacts')
    op.drop_index('ix_contacts_last_activity_at', table_name='contacts')
    op.drop_index(op.f('ix_contacts_customer_id'), table_name='contacts')
    op.drop_table('contacts')
    op.drop_index(op.f('ix_campaign_members_customer_id'), table_name='campaign_members')
    op.drop_table('campaign_members')
    op.drop_table('worker_heartbeats')
    op.drop_table('sources')
    op.drop_table('products')
    op.drop_index('ix_marketing_campaigns_status_send_at', table_name='marketing_campaigns')
    op.drop_table('marketing_campaigns')
    op.drop_index('ix_customers_name_key', table_name='customers')
    op.drop_index('ix_customers_lifecycle_stage', table_name='customers')
    op.drop_table('customers')
    op.drop_table('api_keys')

