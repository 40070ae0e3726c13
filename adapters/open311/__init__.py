"""Open311 GeoReport v2: municipal service requests in as Incidents, risk flags out."""
