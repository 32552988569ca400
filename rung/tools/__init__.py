"""Tool calling on local tiers: how tools are put in a prompt (:mod:`.render`), how calls
are read back out of generated text as it streams (:mod:`.parse`), and the grammar that
constrains a forced or required call (:mod:`.grammar`)."""
