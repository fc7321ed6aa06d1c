"""The monitoring hierarchy: a Prometheus per province (scraping its collector), the ministry's
Prometheus federating each province's aggregates, Alertmanager routing by level with inhibition.
``monitoring.generate`` writes the files, ``monitoring.rules`` holds the rules as data."""
