"""The ``crm`` command: operations, development server and administration."""
