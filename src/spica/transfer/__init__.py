"""Data transfer (seed 2, 3.4): the incoming watcher, outgoing staging, RICE compression, delivery.

``bin/spica watch`` (:mod:`spica.transfer.incoming`) takes complete files from
the incoming area into the workflow's inputs and runs step 1;
``bin/spica transfer stage`` (:mod:`spica.transfer.staging`) puts step 1
products and graded release products in the outgoing area, RICE-compressed
(:mod:`spica.transfer.fpack`), one folder and manifest per delivery;
``bin/spica transfer push`` (:mod:`spica.transfer.delivery`) sends them,
verifies the copies (at a local path or ``host:path``) and purges staging.
The records (arrivals, deliveries, files sent) are tables of the registry
database (:mod:`spica.transfer.state`): :func:`sent_files` is the "Sent to
CADC" column of the operation interface, :func:`arrivals` the arrival times.
"""

from spica.transfer.state import arrivals, deliveries, sent_files

__all__ = ["arrivals", "deliveries", "sent_files"]
