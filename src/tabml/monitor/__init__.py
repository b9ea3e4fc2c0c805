"""Production monitoring: drift between the training reference and a production sample."""
