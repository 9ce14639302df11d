"""Run reports: the terminal summary, and --ws-report JSON / self-contained HTML."""
