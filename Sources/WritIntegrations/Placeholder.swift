// Replaced by the PagerDuty client (issue 5).
