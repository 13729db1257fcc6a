"""Operations: which workers are alive, the backlog, the metrics and the log lines."""
