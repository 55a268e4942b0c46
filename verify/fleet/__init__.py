"""`dlverify fleet report DIR`: one report over the per-host results of a whole inventory.

reader (the folder, file by file, never raising for one bad file) -> facts (what each host's documents
say) -> analyze (groups, failing checks, drift, throughput outliers, ECC/XID, unreachable and missing
hosts) -> render (table, JSON, JUnit) / html (one self-contained page with an SVG chart).
"""
