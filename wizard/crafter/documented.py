"""What Crafter 3.1 documents for a Studio clustered with an external database (its MariaDB runs outside
Studio, as the Galera cluster studio-cluster runs does).  Studio's rendered files may hold only these names
(a unit test renders them and checks); docs/crafter.md cites the page and lists them with their meaning."""

from __future__ import annotations

DOC_PAGE = ("https://docs.craftercms.org/en/3.1/system-administrators/activities/"
            "studio-clustering-with-external-db.html")
"""Crafter CMS 3.1, "Studio Clustering with an External Database"."""

DOCUMENTED_PROPERTIES = frozenset({
    # studio-config-override.yaml, as the page shows and explains them
    "studio.db.url",
    "studio.db.initializer.url",
    "studio.clustering.sync.urlFormat",
    "studio.clustering.sandboxSyncJob.interval",
    "studio.clustering.publishedSyncJob.interval",
    "studio.clustering.heartbeatStale.timeLimit",
    "studio.clustering.inactivity.timeLimit",
    "studio.clustering.node.registration.localAddress",
    "studio.clustering.node.registration.authenticationType",
    "studio.clustering.node.registration.username",
    "studio.clustering.node.registration.password",
    "studio.clustering.node.registration.privateKey",
})

DOCUMENTED_VARIABLES = frozenset({
    # crafter-setenv.sh, as the page shows and explains them
    "SPRING_PROFILES_ACTIVE",
    "MARIADB_HOST",
    "MARIADB_PORT",
    "MARIADB_ROOT_PASSWD",
    "MARIADB_USER",
    "MARIADB_PASSWD",
    "CLUSTER_NODE_ADDRESS",
})
