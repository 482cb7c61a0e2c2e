"""Read models built from the event log; each module owns its tables, SQL and tracking."""
