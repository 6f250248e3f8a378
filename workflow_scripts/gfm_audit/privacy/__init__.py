"""The privacy audit: reference -> windows -> neighbors -> membership -> training -> scoring -> attacks,
metrics, figures and the report. One module per stage, named as its rule file."""
