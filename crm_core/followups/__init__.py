"""Follow-up tasks created by rules when a lead, case or deal is left waiting."""
