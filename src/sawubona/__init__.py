"""sawubona — "I see you": a customer-experience and loyalty engine.

Open a store, load your exports, look at every concrete customer::

    import sawubona
    store = sawubona.open("sawubona.duckdb")
    store.ingest("exports/", adapter=None)
    store.table("journeys").to_pandas()
"""

from sawubona.errors import (
    InputError,
    MappingError,
    SawubonaError,
    StoreBusyError,
    StoreError,
    UnknownCustomerError,
    UnknownTableError,
)
from sawubona.store import Store, open

__version__ = "0.1.0.dev0"

__all__ = [
    "InputError",
    "MappingError",
    "SawubonaError",
    "Store",
    "StoreBusyError",
    "StoreError",
    "UnknownCustomerError",
    "UnknownTableError",
    "__version__",
    "open",
]
