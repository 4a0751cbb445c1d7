-- Every write of an application bumps its resource_version: the API serves a cached
-- rendering of an application while its resource_version is unchanged, so a write
-- that forgot to bump it would show a stale status. Refuse such a write outright.
CREATE FUNCTION applications_resource_version_grows() RETURNS trigger AS $$
BEGIN
    IF NEW.resource_version <= OLD.resource_version THEN
        RAISE EXCEPTION 'applications.resource_version must grow with every write';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER applications_resource_version_grows
BEFORE UPDATE ON applications
FOR EACH ROW EXECUTE FUNCTION applications_resource_version_grows();
