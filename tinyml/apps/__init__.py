"""Applications built on tinyml: keyword spotting (``kws``, over the host
link: ``kws_link``) and the demos (``demo``)."""
