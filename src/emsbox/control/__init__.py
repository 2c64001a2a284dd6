"""The controller: digital input and output functions, alarms and tariffs."""
