"""Benchmarks that speak DIMSE and DICOMweb, so one script measures Skylight and Orthanc alike."""
