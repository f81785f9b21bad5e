"""DAG: the DAG folder parses, the timetable, the Assets."""
