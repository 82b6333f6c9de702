"""The hub: a FHIR interoperability hub for neighbourhood mental health care."""
