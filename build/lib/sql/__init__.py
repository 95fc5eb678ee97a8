"""The SQL the warehouse module runs: schema/ (numbered migrations), views/, queries/ (named queries)."""
