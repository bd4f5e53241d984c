"""A warning's life after it is sent: cases, answers, exemptions, follow-up."""
