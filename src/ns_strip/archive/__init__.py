"""Archive scale: index whole archives of wheels, sdists and ``.deb`` files, then report
conflicts and a census across them (``ns-strip archive index|report``).

The pipeline, as elsewhere in ns-strip: sources -> analysis -> actions -> outputs.

- sources: :mod:`.artifacts` shows each artifact as the site dir it installs, through the
  ``Source`` protocol (wheels by ``WheelSource``; sdists and ``.deb`` files read by the bounded
  readers of :mod:`.streams` into a :mod:`.members` view);
- analysis: :mod:`.analyse` is the task function, built on the analyses ``scan``, ``ext`` and
  ``import-names`` use, plus the ``.pth`` audit of :mod:`.pth`;
- actions: :mod:`.engines` run it in local processes or on a Dask cluster; :mod:`.indexer`
  (the coordinator, the only writer) stores each record in :mod:`.store`'s SQLite index;
- outputs: :mod:`.census` computes conflicts and the census, :mod:`.render` the text and HTML.
"""
