"""The rig farm: rig pairs shared through labgrid's coordinator (docs/farm.md).

- :mod:`rig.farm.lines`: the rig pair's fault lines over HTTP (the line server on the master
  Pi, and the ``remote`` GPIO backend the rig drives them with);
- :mod:`rig.farm.place`: a labgrid client session: reserve, wait, acquire, release, list;
- :mod:`rig.farm.resolve`: an acquired place's resources -> a rig file the suite runs on;
- :mod:`rig.farm.hold`: what ``mbus-rig run`` does around pytest for a ``[labgrid]`` rig.

labgrid is an optional extra (``pip install 'mbus-rig[farm]'``): only ``place`` imports it.
"""
