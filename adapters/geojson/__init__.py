"""GeoJSON hazard feeds (RFC 7946 FeatureCollections, such as USGS earthquakes) as Incidents."""
