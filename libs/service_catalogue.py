"""The service catalogue (infra/policies/services.yaml): which team owns which deployed service."""

import fnmatch
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.release import TEAM_PATTERN


class ServiceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str = Field(pattern=TEAM_PATTERN)


class ServiceCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    services: dict[str, ServiceEntry] = {}

    @classmethod
    def load(cls, path: Path) -> "ServiceCatalogue":
        """The catalogue in `path`; a missing file is an empty catalogue, a broken one an error naming the field."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls()
        try:
            return cls.model_validate(yaml.safe_load(text) or {})
        except ValidationError as invalid:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors(include_url=False))
            raise CatalogueError(f"{path}: {problems}") from None
        except yaml.YAMLError as exc:
            raise CatalogueError(f"{path}: not YAML: {exc}") from None

    def team_of(self, service: str) -> str | None:
        exact = self.services.get(service)
        if exact is not None:
            return exact.team
        return next((e.team for pattern, e in self.services.items() if fnmatch.fnmatchcase(service, pattern)), None)

    def teams(self) -> tuple[str, ...]:
        return tuple(sorted({entry.team for entry in self.services.values()}))


class CatalogueError(ValueError):
    """The catalogue file cannot be used; the message names the file and the field."""
