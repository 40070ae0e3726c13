"""District governance at the hub: its audit log of relayed disclosures, emergency declarations."""
