"""moto's server, with the CodeCommit calls moto 5 does not implement added to its own backend, as
AWS documents them (https://docs.aws.amazon.com/codecommit/latest/APIReference/):
  ListRepositories      repositories [{repositoryName, repositoryId}], sorted by name, nextToken
                        (page size: $MOTO_CODECOMMIT_PAGE_SIZE, AWS's being up to 1,000)
  BatchGetRepositories  repositories [metadata], repositoriesNotFound, at most 25 names
  UpdateDefaultBranch   the branch is recorded as the metadata's defaultBranch
Everything else is moto's, unchanged: `python3 moto_server.py -H 127.0.0.1 -p PORT`."""
import json
import os

from moto.codecommit.exceptions import RepositoryDoesNotExistException
from moto.codecommit.models import CodeCommitBackend
from moto.codecommit.responses import CodeCommitResponse
from moto.core.exceptions import JsonRESTError
from moto.server import main


def list_repositories(self):
    names = sorted(self.codecommit_backend.repositories)
    if self._get_param("order") == "descending":
        names.reverse()
    size = int(os.environ.get("MOTO_CODECOMMIT_PAGE_SIZE", "1000"))
    start = int(self._get_param("nextToken") or 0)
    page = names[start:start + size]
    answer = {"repositories": [{"repositoryName": name,
                                "repositoryId": self.codecommit_backend.repositories[name].repository_metadata["repositoryId"]}
                               for name in page]}
    if start + size < len(names):
        answer["nextToken"] = str(start + size)
    return json.dumps(answer)


def batch_get_repositories(self):
    names = self._get_param("repositoryNames") or []
    if len(names) > 25:
        raise JsonRESTError("MaximumRepositoryNamesExceededException", "The maximum number of allowed repository names was exceeded (25)")
    found, missing = [], []
    for name in names:
        repository = self.codecommit_backend.repositories.get(name)
        if repository:
            found.append(repository.repository_metadata)
        else:
            missing.append(name)
    return json.dumps({"repositories": found, "repositoriesNotFound": missing})


def update_default_branch(self):
    name = self._get_param("repositoryName")
    repository = self.codecommit_backend.repositories.get(name)
    if not repository:
        raise RepositoryDoesNotExistException(name)
    repository.repository_metadata["defaultBranch"] = self._get_param("defaultBranchName")
    return "{}"


CodeCommitResponse.list_repositories = list_repositories
CodeCommitResponse.batch_get_repositories = batch_get_repositories
CodeCommitResponse.update_default_branch = update_default_branch
assert CodeCommitBackend  # the backend's repositories dict is what the calls read and write

if __name__ == "__main__":
    main()
