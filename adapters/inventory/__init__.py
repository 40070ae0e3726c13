"""Warehouse inventory exports (CSV, XLSX) as Resources."""
