"""Dataset sources, splitting and the table format every stage shares."""
