"""One class per group of routes (`/files`, `/batches`, New-API's `/api`), reached as `BatchClient` attributes."""

from batchctl.api.resources.batches import Batches
from batchctl.api.resources.files import Files
from batchctl.api.resources.newapi import NewAPI

__all__ = ["Batches", "Files", "NewAPI"]
