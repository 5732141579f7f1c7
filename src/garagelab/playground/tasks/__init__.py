"""Task definitions, one module per domain; `garagelab.playground.registry` names their variants."""
