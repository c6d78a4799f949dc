"""SQL criteria: the team's written definition of a sales-qualified lead.

* :mod:`~leadscore.features.criteria.rules`: the file, its loading and validation;
* :mod:`~leadscore.features.criteria.check`: one lead checked (pure, no pandas);
* :mod:`~leadscore.features.criteria.evidence`: many leads checked, the report's numbers and the
  statistics behind a draft;
* :mod:`~leadscore.features.criteria.draft`: the report and evidence as tables, the draft file.
"""
