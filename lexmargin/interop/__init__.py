"""Front doors: translate other tools' models into lexmargin NLPs (and back), then solve on the shared pipeline."""
