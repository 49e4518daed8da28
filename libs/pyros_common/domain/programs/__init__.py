"""Scientific programs: grades, semesters, quotas and the quota ledger, and the priority scheme."""
