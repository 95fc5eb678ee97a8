-- Has a load of this kind with this content hash been committed? params: kind, content_hash
SELECT count(*) AS n FROM loads WHERE kind = ? AND content_hash = ?
