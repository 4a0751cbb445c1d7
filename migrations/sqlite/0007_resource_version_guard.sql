-- Every write of an application bumps its resource_version: the API serves a cached
-- rendering of an application while its resource_version is unchanged, so a write
-- that forgot to bump it would show a stale status. Refuse such a write outright.
CREATE TRIGGER applications_resource_version_grows
BEFORE UPDATE ON applications
WHEN NEW.resource_version <= OLD.resource_version
BEGIN
    SELECT RAISE(ABORT, 'applications.resource_version must grow with every write');
END;
