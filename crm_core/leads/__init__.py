"""Leads: normalize what a form sent, then capture it as CRM data (contacts, customers, deals)."""
