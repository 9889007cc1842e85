"""The outreach workflows that span models or have side effects, one module per resource.

Callers import from the module that holds the service (`outreach.services.loop`,
`outreach.services.delivery`, ...), which is also where a test patches a name."""
