"""The HTML report, results/report/report.html: one self-contained page (figures embedded, readable offline).

- ``layout``: every file the report reads, declared once (also what the plotting rules write);
- ``elements``: tables and embedded figures, the pieces every section is made of;
- ``page``: the page around the sections (style, the run section, the run's configuration);
- ``build``: the sections in their order, each from the report rule's inputs by key;
- ``stages``: the report rule's adapter.

Each section's own HTML comes from the package of its part: ``privacy/report.py``, ``privacy/dp_report.py``,
``privacy/memorisation/report.py``, ``privacy/individuals/report.py``, ``robustness/ga/report.py`` and
``robustness/fimba/report.py``.
Nothing is imported here, so that rules/common.smk, which reads ``layout`` as the workflow is parsed, loads
nothing else.
"""
