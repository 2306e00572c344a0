"""The same cluster as Kubernetes manifests, from the same profile (``studio-cluster k8s render``).

* :mod:`wizard.k8s.topology`  names, pod addresses, and the profile as the pods see it
* :mod:`wizard.k8s.configs`   ConfigMaps: the SSH path's templates and agent config, the agent bundle
* :mod:`wizard.k8s.galera`    the Galera StatefulSet, garbd Deployment, Services, PodDisruptionBudget
* :mod:`wizard.k8s.redis`     Redis with Sentinel for the coordination
* :mod:`wizard.k8s.backup`    scheduled Arbiter backups as a CronJob (with ``backups.schedule``)
* :mod:`wizard.k8s.manifests` every object, in apply order; YAML files or one JSON list

The bootstrap decision is the node agent's (:mod:`wizard.agent.k8s_pod` runs its election in an init
container); docs/kubernetes.md says how to apply them and what happens on a loss.
"""
